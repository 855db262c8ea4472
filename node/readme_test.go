package node

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeListsEveryCommand keeps README.md's commands table equal to the
// command table. Run with SLUICE_UPDATE_README=1 to rewrite it.
func TestReadmeListsEveryCommand(t *testing.T) {
	const path = "../README.md"
	const begin, end = "<!-- commands:begin (generated from the command table by node/readme_test.go) -->", "<!-- commands:end -->"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", begin, end)
	}
	want := begin + "\n" + commandsMarkdown() + end
	if text[i:j+len(end)] == want {
		return
	}
	if os.Getenv("SLUICE_UPDATE_README") != "" {
		if err := os.WriteFile(path, []byte(text[:i]+want+text[j+len(end):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's commands table differs from the command table; run SLUICE_UPDATE_README=1 go test ./node -run TestReadme")
}

// commandsMarkdown renders the command table as a Markdown table by group.
func commandsMarkdown() string {
	groups := []struct{ name, title string }{
		{"string", "Strings"}, {"generic", "Keys"}, {"cache", "Cache entries (stale-while-revalidate)"},
		{"ratelimit", "Rate limiting"}, {"transactions", "Transactions"}, {"connection", "Connection"},
		{"server", "Server"}, {"cluster", "Cluster"}, {"scripting", "Scripting"},
	}
	var b strings.Builder
	b.WriteString("| group | command | arguments | what it does |\n|---|---|---|---|\n")
	for _, g := range groups {
		for _, name := range sortedNames(commands) {
			cmd := commands[name]
			if cmd.Group != g.name {
				continue
			}
			if cmd.sub == nil {
				b.WriteString("| " + g.title + " | `" + strings.ToUpper(name) + "` | " + arityText(cmd) + " | " + cmd.Summary + " |\n")
				continue
			}
			for _, s := range sortedNames(cmd.sub) {
				b.WriteString("| " + g.title + " | `" + strings.ToUpper(name+" "+s) + "` | " + arityText(cmd.sub[s]) + " | " + cmd.sub[s].Summary + " |\n")
			}
		}
	}
	return b.String()
}

// arityText says how many arguments follow the command's name (a
// subcommand's name is two words).
func arityText(c *Command) string {
	words := 1
	if c.parent != nil {
		words = 2
	}
	if c.Arity < 0 {
		return ">= " + strconv.Itoa(-c.Arity-words)
	}
	return strconv.Itoa(c.Arity - words)
}
