package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// cliResult is what a run of redis-cli or redis-benchmark printed.
type cliResult struct {
	out  string
	code int
}

// runTool runs a Redis command-line tool against addr with stdin as input.
func runTool(t *testing.T, tool, addr, stdin string, args ...string) cliResult {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lookTool(t, tool), append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return cliResult{out.String(), exit.ExitCode()}
	case err != nil:
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out.String())
	}
	return cliResult{out.String(), 0}
}

// TestRedisCLI runs redis-cli commands against Sluice, checking the exact
// output of a few, and the same commands against Redis, whose output (and
// exit code) Sluice's must equal.
func TestRedisCLI(t *testing.T) {
	t.Parallel()
	sluice := startSluice(t, node.Config{})
	redis := startRedis(t)

	cases := []struct {
		args  []string
		stdin string
		want  string // exact output on Sluice; "" to compare with Redis only
	}{
		{args: []string{"PING"}, want: "PONG\n"},
		{args: []string{"SET", "k", "hello world"}, want: "OK\n"},
		{args: []string{"GET", "k"}, want: "hello world\n"},
		{args: []string{"GET", "missing"}, want: "\n"},
		{args: []string{"INCR", "n"}, want: "1\n"},
		{args: []string{"INCRBY", "n", "41"}, want: "42\n"},
		{args: []string{"INCR", "k"}, want: "ERR value is not an integer or out of range\n\n"},
		{args: []string{"--no-raw", "INCR", "n"}, want: "(integer) 43\n"},
		{args: []string{"--no-raw", "GET", "k"}, want: "\"hello world\"\n"},
		{args: []string{"--no-raw", "GET", "missing"}, want: "(nil)\n"},
		{args: []string{"--no-raw", "INCR", "k"}, want: "(error) ERR value is not an integer or out of range\n"},
		{args: []string{"--no-raw", "NOSUCH", "x"}},
		{args: []string{"MSET", "a", "1", "b", "2"}, want: "OK\n"},
		{args: []string{"MGET", "a", "b", "missing"}, want: "1\n2\n\n"},
		{args: []string{"--no-raw", "MGET", "a", "missing"}, want: "1) \"1\"\n2) (nil)\n"},
		{args: []string{"EXPIRE", "a", "100"}, want: "1\n"},
		{args: []string{"TTL", "a"}},
		{args: []string{"DBSIZE"}, want: "4\n"},
		{args: []string{"-3", "GET", "missing"}},
		{args: []string{"-3", "--no-raw", "HELLO", "3"}},
		{args: []string{"--scan", "--pattern", "[ab]"}},
		{args: []string{"-x", "SET", "fromstdin"}, stdin: "piped\n", want: "OK\n"},
		{args: []string{"GET", "fromstdin"}, want: "piped\n\n"},
		{args: []string{}, stdin: "SET p 1\nINCR p\nGET p\n", want: "OK\n2\n2\n"},
	}
	for _, tc := range cases {
		name := strings.Join(tc.args, " ")
		got := runTool(t, "redis-cli", sluice, tc.stdin, tc.args...)
		ref := runTool(t, "redis-cli", redis, tc.stdin, tc.args...)
		if name == "--scan --pattern [ab]" {
			got.out, ref.out = sortLines(got.out), sortLines(ref.out)
		}
		if name == "-3 --no-raw HELLO 3" || name == "TTL a" {
			got.out, ref.out = maskDigits(got.out), maskDigits(ref.out)
		}
		if tc.want != "" && got.out != tc.want {
			t.Errorf("redis-cli %s: output %q, want %q", name, got.out, tc.want)
		}
		if got != ref {
			t.Errorf("redis-cli %s: Sluice printed %q (exit %d), Redis %q (exit %d)",
				name, got.out, got.code, ref.out, ref.code)
		}
	}
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

var digits = regexp.MustCompile(`[0-9]+`)

// maskDigits hides numbers that differ between servers (ids, versions, TTLs)
// and the server name in HELLO.
func maskDigits(s string) string {
	s = strings.ReplaceAll(s, "\"sluice\"", "\"redis\"")
	return digits.ReplaceAllString(s, "N")
}

// TestRedisCLIPipe loads keys with redis-cli --pipe, the mass-insertion
// mode, which ends with an ECHO of a random marker.
func TestRedisCLIPipe(t *testing.T) {
	t.Parallel()
	addr := startSluice(t, node.Config{})
	var in strings.Builder
	const n = 5000
	for i := range n {
		in.Write(encodeCommand([]string{"SET", "pipe:" + strconv.Itoa(i), strconv.Itoa(i)}))
	}
	r := runTool(t, "redis-cli", addr, in.String(), "--pipe")
	if r.code != 0 || !strings.Contains(r.out, fmt.Sprintf("errors: 0, replies: %d", n)) {
		t.Fatalf("redis-cli --pipe: exit %d, output %q", r.code, r.out)
	}
	if got := runTool(t, "redis-cli", addr, "", "DBSIZE"); got.out != fmt.Sprintf("%d\n", n) {
		t.Errorf("DBSIZE after --pipe = %q", got.out)
	}
}

var benchLine = regexp.MustCompile(`(SET|GET): ([0-9.]+) requests per second`)

// TestRedisBenchmark runs redis-benchmark's SET and GET tests against Sluice
// with and without pipelining, and against Redis for a reference figure. Both
// must complete with no errors; the throughputs go to the test log (they are
// not asserted: the machine is shared and -race slows Sluice down).
func TestRedisBenchmark(t *testing.T) {
	t.Parallel()
	sluice := startSluice(t, node.Config{})
	redis := startRedis(t)
	for _, pipeline := range []string{"1", "16"} {
		results := map[string]map[string]float64{}
		for _, target := range []struct{ name, addr string }{{"sluice", sluice}, {"redis", redis}} {
			r := runTool(t, "redis-benchmark", target.addr, "", "-t", "set,get", "-n", "20000", "-P", pipeline, "-q")
			if r.code != 0 || strings.Contains(strings.ToLower(r.out), "error") {
				t.Errorf("redis-benchmark -P %s against %s: exit %d, output:\n%s", pipeline, target.name, r.code, r.out)
				continue
			}
			got := map[string]float64{}
			for _, m := range benchLine.FindAllStringSubmatch(r.out, -1) {
				got[m[1]], _ = strconv.ParseFloat(m[2], 64)
			}
			if got["SET"] <= 0 || got["GET"] <= 0 {
				t.Errorf("redis-benchmark -P %s against %s: no requests per second for SET and GET in:\n%s",
					pipeline, target.name, r.out)
			}
			results[target.name] = got
		}
		for _, op := range []string{"SET", "GET"} {
			s, r := results["sluice"][op], results["redis"][op]
			if s > 0 && r > 0 {
				t.Logf("redis-benchmark -P %-2s %s: Sluice %.0f req/s, Redis %.0f req/s (ratio %.2f)",
					pipeline, op, s, r, s/r)
			}
		}
	}
}
