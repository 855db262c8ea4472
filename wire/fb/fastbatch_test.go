package fb

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/sluicedb/sluice/node"
)

// TestReadsAcrossExec checks the server's use of node.FastBatch in a
// request whose reads are split by an operation that runs through Exec and
// changes the session: an AUTH as a user with fewer keys is applied to the
// reads after it, and INFO counts exactly the GETs that ran.
func TestReadsAcrossExec(t *testing.T) {
	n, s := startNode(t, node.Config{RequirePass: "admin"}, Config{})
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"ACL", "SETUSER", "reader", "on", ">pw", "~public:*", "+get"},
		{"SET", "secret", "v"},
		{"SET", "public:x", "px"},
	} {
		if _, err := n.Do(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(section, re string) int64 {
		info, err := n.Do(ctx, "INFO", section)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(re).FindStringSubmatch(fmt.Sprint(info))
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	calls := func() int64 { return stat("commandstats", `cmdstat_get:calls=(\d+),`) }
	hits := func() int64 { return stat("stats", `keyspace_hits:(\d+)`) }
	misses := func() int64 { return stat("stats", `keyspace_misses:(\d+)`) }
	calls0, hits0, misses0 := calls(), hits(), misses()

	nc := rawConn(t, s)
	var b Batch
	b.auth("", "admin")
	first := b.Get("secret")
	missing := b.Get("nothing")
	b.auth("reader", "pw")
	refused := b.Get("secret")
	public := b.Get("public:x")
	nc.Write(b.encode(1))
	_, r := readResponse(t, nc, b.Len())
	if v, ok := r.Result(first).Value(); !ok || string(v) != "v" {
		t.Errorf("GET secret as default: %q, %v", v, r.Result(first).Err())
	}
	if _, ok := r.Result(missing).Value(); ok || r.Result(missing).Err() != nil {
		t.Errorf("GET nothing: %v", r.Result(missing).Err())
	}
	want := "NOPERM this user has no permissions to access one of the keys used as arguments"
	if err := r.Result(refused).Err(); err == nil || err.Error() != want {
		t.Errorf("GET secret after AUTH reader: %v, want %s", err, want)
	}
	if v, ok := r.Result(public).Value(); !ok || string(v) != "px" {
		t.Errorf("GET public:x as reader: %q, %v", v, r.Result(public).Err())
	}
	// INFO runs after the response: the request's reads are counted.
	if got := calls() - calls0; got != 3 {
		t.Errorf("cmdstat_get calls grew by %d, want 3", got)
	}
	if got := hits() - hits0; got != 2 {
		t.Errorf("keyspace_hits grew by %d, want 2", got)
	}
	if got := misses() - misses0; got != 1 {
		t.Errorf("keyspace_misses grew by %d, want 1", got)
	}
}
