package test

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// A scenario is a sequence of commands run against a freshly flushed Redis
// and a freshly flushed Sluice, step by step and side by side, with each
// pair of replies compared.
type scenario struct {
	name  string
	steps []step
}

// A step is one command on one of the scenario's connections.
type step struct {
	conn int      // which of the scenario's connections (0, 1, ...)
	args []string // the command; nil for a pause
	// cmp compares Redis's reply (first) with Sluice's and returns why they
	// differ, or "" when they agree. nil means exactly equal.
	cmp func(redis, sluice Reply) string
	// sluice, when set, makes the step run on Sluice only: it returns why
	// Sluice's reply is wrong, or "". For behaviour Redis 7.0 cannot serve as
	// the reference for (SELECT 1 in cluster mode, CLIENT SETINFO of 7.2).
	sluice func(c *rawConn) string
	// fn, when set, replaces args: it runs on each server with the scenario's
	// connections there and returns the reply to compare. For commands whose
	// arguments come from earlier replies (CLIENT KILL ID) and for raw input.
	fn func(conn func(n int) *rawConn) Reply
	// scan runs args as a SCAN to its end (args[1] is the first cursor) and
	// compares the sorted set of keys returned instead of each page.
	scan bool
	// pause waits before the next step, for expiry that only time can show.
	pause time.Duration
}

// do is a step on the scenario's first connection, compared exactly.
func do(args ...string) step { return step{args: args} }

// cmd is do with the arguments split at spaces, for the many commands whose
// arguments have none.
func cmd(line string) step { return step{args: strings.Fields(line)} }

// on is a step on connection n.
func on(n int, args ...string) step { return step{conn: n, args: args} }

// with sets how the step's replies are compared.
func (s step) with(cmp func(redis, sluice Reply) string) step {
	s.cmp = cmp
	return s
}

// sluiceOnly is a step run on Sluice alone, where want is the exact reply.
func sluiceOnly(want Reply, args ...string) step {
	return step{args: args, sluice: func(c *rawConn) string {
		if got := c.Do(args...); !got.Equal(want) {
			return fmt.Sprintf("want %s, got %s", want, got)
		}
		return ""
	}}
}

// scanAll is a SCAN iterated to the end from cursor 0; args follow the
// cursor (MATCH, COUNT, TYPE).
func scanAll(args ...string) step {
	return step{args: append([]string{"SCAN", "0"}, args...), scan: true}
}

func pause(d time.Duration) step { return step{pause: d} }

// Reply constructors for expectations.
func simple(s string) Reply   { return Reply{Kind: '+', Str: s} }
func errReply(s string) Reply { return Reply{Kind: '-', Str: s} }
func integer(n int64) Reply   { return Reply{Kind: ':', Str: strconv.FormatInt(n, 10)} }
func bulk(s string) Reply     { return Reply{Kind: '$', Str: s} }

// Comparers for replies that are not deterministic.

// intWithin accepts two integers at most d apart (TTL, PTTL, EXPIRETIME).
func intWithin(d int64) func(a, b Reply) string {
	return func(a, b Reply) string {
		x, ok1 := a.Int()
		y, ok2 := b.Int()
		if !ok1 || !ok2 || x-y > d || y-x > d {
			return fmt.Sprintf("want an integer within %d of Redis's", d)
		}
		return ""
	}
}

// sameKind accepts two replies of the same RESP type, whatever the value.
func sameKind(a, b Reply) string {
	if a.Kind != b.Kind || a.Nil != b.Nil {
		return "want the same reply type as Redis"
	}
	return ""
}

// sorted compares two arrays as sets: element order is the server's choice
// (KEYS).
func sorted(a, b Reply) string {
	if a.Kind != b.Kind || a.Nil != b.Nil || len(a.Elems) != len(b.Elems) {
		return "want the same elements as Redis, in any order"
	}
	x, y := sortElems(a), sortElems(b)
	for i := range x {
		if x[i] != y[i] {
			return "want the same elements as Redis, in any order"
		}
	}
	return ""
}

func sortElems(r Reply) []string {
	out := make([]string, len(r.Elems))
	for i, e := range r.Elems {
		out[i] = e.String()
	}
	sort.Strings(out)
	return out
}

// mapKeys compares two maps (or RESP2 arrays of pairs) by their keys alone,
// in any order (HELLO).
func mapKeys(a, b Reply) string {
	if a.Kind != b.Kind {
		return "want the same reply type as Redis"
	}
	ka, ok1 := pairKeys(a)
	kb, ok2 := pairKeys(b)
	if !ok1 || !ok2 || strings.Join(ka, "\x00") != strings.Join(kb, "\x00") {
		return fmt.Sprintf("want the map keys %v, got %v", ka, kb)
	}
	return ""
}

// pairKeys returns the sorted keys of a map or RESP2 array of pairs.
func pairKeys(r Reply) ([]string, bool) {
	pairs, ok := r.Pairs()
	if !ok {
		return nil, false
	}
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		keys[i] = p[0].Str
	}
	sort.Strings(keys)
	return keys, true
}

// scanPage accepts two SCAN pages, whatever their cursor and keys, or two
// equal errors: for cursors Redis accepts whose pages are its own business.
func scanPage(a, b Reply) string {
	if a.IsError() || b.IsError() {
		if !a.Equal(b) {
			return "want exactly Redis's reply"
		}
		return ""
	}
	if b.Kind != '*' || len(b.Elems) != 2 || b.Elems[0].Kind != '$' || b.Elems[1].Kind != '*' {
		return "want a SCAN page [cursor, keys]"
	}
	return ""
}

var diffVerbose = flag.Bool("diff.verbose", false, "log both replies of every differential step")

// TestDifferential runs every scenario against Redis and Sluice and reports
// each step whose replies differ.
func TestDifferential(t *testing.T) {
	t.Parallel()
	runGroups(t, startRedis(t), startSluice(t, node.Config{}), "", []scenarioGroup{
		{"strings", stringScenarios},
		{"counters", counterScenarios},
		{"ranges", rangeScenarios},
		{"keyspace", keyspaceScenarios},
		{"expire", expireScenarios},
		{"transactions", transactionScenarios},
		{"connection", connectionScenarios},
		{"tracking", trackingScenarios},
		{"server", serverScenarios},
	})
}

type scenarioGroup struct {
	name      string
	scenarios []scenario
}

// runGroups runs scenario groups one scenario at a time (they share the two
// servers); password, when set, is what the servers require.
func runGroups(t *testing.T, redisAddr, sluiceAddr, password string, groups []scenarioGroup) {
	scenarios, steps := 0, 0
	for _, g := range groups {
		scenarios += len(g.scenarios)
		for _, sc := range g.scenarios {
			steps += len(sc.steps)
		}
	}
	t.Logf("%d scenarios, %d steps", scenarios, steps)
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, sc := range g.scenarios {
				t.Run(sc.name, func(t *testing.T) {
					runScenario(t, sc, redisAddr, sluiceAddr, password)
				})
			}
		})
	}
}

// side is one server under comparison with the connections a scenario has
// opened to it.
type side struct {
	addr  string
	conns map[int]*rawConn
}

func (s *side) conn(t *testing.T, n int) *rawConn {
	if c := s.conns[n]; c != nil && !c.dead {
		return c
	}
	c := dialRaw(t, s.addr)
	s.conns[n] = c
	return c
}

func runScenario(t *testing.T, sc scenario, redisAddr, sluiceAddr, password string) {
	redis := &side{addr: redisAddr, conns: map[int]*rawConn{}}
	sluice := &side{addr: sluiceAddr, conns: map[int]*rawConn{}}
	for _, s := range []*side{redis, sluice} {
		flush := dialRaw(t, s.addr)
		if password != "" {
			if r := flush.Do("AUTH", password); !r.Equal(simple("OK")) {
				t.Fatalf("AUTH on %s before the scenario: %s", s.addr, r)
			}
		}
		if r := flush.Do("FLUSHALL"); !r.Equal(simple("OK")) {
			t.Fatalf("FLUSHALL on %s before the scenario: %s", s.addr, r)
		}
		flush.Close()
	}
	for i, st := range sc.steps {
		if st.pause > 0 {
			time.Sleep(st.pause)
			continue
		}
		label := fmt.Sprintf("step %d: %s", i, showArgs(st.args))
		if st.conn > 0 {
			label += fmt.Sprintf(" (connection %d)", st.conn)
		}
		if st.sluice != nil {
			if why := st.sluice(sluice.conn(t, st.conn)); why != "" {
				t.Errorf("%s\n  Sluice only: %s", label, why)
			}
			continue
		}
		var rr, sr Reply
		switch {
		case st.fn != nil:
			rr = st.fn(func(n int) *rawConn { return redis.conn(t, n) })
			sr = st.fn(func(n int) *rawConn { return sluice.conn(t, n) })
		case st.scan:
			rr = scanToEnd(redis.conn(t, st.conn), st.args)
			sr = scanToEnd(sluice.conn(t, st.conn), st.args)
		default:
			rr = redis.conn(t, st.conn).Do(st.args...)
			sr = sluice.conn(t, st.conn).Do(st.args...)
		}
		for name, s := range map[string]*side{"redis": redis, "sluice": sluice} {
			if c := s.conns[st.conn]; c != nil && c.malformed() != nil {
				t.Errorf("%s\n  %s sent a reply that is not RESP: %v", label, name, c.malformed())
			}
		}
		why := ""
		if st.cmp != nil {
			why = st.cmp(rr, sr)
		} else if !rr.Equal(sr) {
			why = "want exactly Redis's reply"
		}
		if *diffVerbose {
			t.Logf("%s\n  redis:  %s\n  sluice: %s", label, clip(rr.String()), clip(sr.String()))
		}
		if why != "" {
			t.Errorf("%s\n  redis:  %s\n  sluice: %s\n  (%s)", label, clip(rr.String()), clip(sr.String()), why)
		}
	}
}

// scanToEnd runs a SCAN from args[1] until the cursor comes back to 0 and
// returns the sorted keys seen, or the first reply that is not a SCAN page.
func scanToEnd(c *rawConn, args []string) Reply {
	args = append([]string(nil), args...)
	seen := map[string]bool{}
	for range 100000 {
		r := c.Do(args...)
		if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[0].Kind != '$' || r.Elems[1].Kind != '*' {
			return r
		}
		for _, k := range r.Elems[1].Elems {
			seen[k.Str] = true
		}
		if r.Elems[0].Str == "0" {
			keys := make([]string, 0, len(seen))
			for k := range seen {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := Reply{Kind: '*', Elems: []Reply{}}
			for _, k := range keys {
				out.Elems = append(out.Elems, bulk(k))
			}
			return out
		}
		args[1] = r.Elems[0].Str
	}
	return Reply{Kind: '-', Str: "test: SCAN did not finish in 100000 calls"}
}

func showArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if len(a) > 40 {
			a = fmt.Sprintf("%s...(%d bytes)", a[:20], len(a))
		}
		if a == "" || strings.IndexFunc(a, func(r rune) bool { return r <= ' ' || r == '"' || r >= 0x7f }) >= 0 {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + fmt.Sprintf("...(%d chars)", len(s))
	}
	return s
}
