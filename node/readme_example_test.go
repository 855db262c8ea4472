package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeGoProgramRuns builds and runs the first Go code block of the
// README as a user would, in a module of its own that uses this checkout.
func TestReadmeGoProgramRuns(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```go\n")
	if !ok {
		t.Fatal("README.md has no Go code block")
	}
	program, _, _ := strings.Cut(rest, "```")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example\n\ngo 1.26\n\nrequire github.com/sluicedb/sluice v0.0.0\n\nreplace github.com/sluicedb/sluice => " + repo + "\n"
	for name, text := range map[string]string{"go.mod": gomod, "main.go": program} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The module's own go.sum serves the example's dependencies.
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "-mod=mod", ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run of the README's program: %v\n%s", err, out)
	}
	want := "hello <nil>\nAda Lovelace <nil>\ntrue 9 <nil>\n5 <nil>\n"
	if string(out) != want {
		t.Fatalf("the README's program printed:\n%s\nwant:\n%s", out, want)
	}
}
