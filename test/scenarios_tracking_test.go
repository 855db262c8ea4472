package test

import "time"

// Scenarios for client-side caching: CLIENT TRACKING in its modes and the
// RESP3 invalidation pushes it produces, which rueidis (and go-redis's
// client-side cache) depend on. Pushes may reach the client at any point
// after the write, so they are awaited rather than expected in line.

// pushWait bounds the wait for an invalidation push that must come.
const pushWait = 2 * time.Second

// quietWait is how long a step that expects no push listens for one.
const quietWait = 100 * time.Millisecond

// awaitPush waits for the next push message on connection n.
func awaitPush(n int) step {
	return step{args: []string{"(await an invalidation push)"}, conn: n, fn: func(conn func(int) *rawConn) Reply {
		if p, ok := conn(n).WaitPush(pushWait); ok {
			return p
		}
		return Reply{Kind: kindTimeout}
	}}
}

// noPush checks that no push message arrives on connection n for a while.
func noPush(n int) step {
	return step{args: []string{"(expect no push)"}, conn: n, fn: func(conn func(int) *rawConn) Reply {
		if p, ok := conn(n).WaitPush(quietWait); ok {
			return p
		}
		return simple("no push")
	}}
}

var trackingScenarios = []scenario{
	{"default-mode", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON"),
		cmd("SET k v"),
		cmd("GET k"),
		on(1, "SET", "k", "v2"),
		awaitPush(0),
		on(1, "SET", "k", "v3"),
		noPush(0),
		cmd("GET k"),
		on(1, "DEL", "k"),
		awaitPush(0),
		cmd("MGET a b"),
		on(1, "MSET", "a", "1", "b", "2"),
		awaitPush(0),
		awaitPush(0),
		cmd("GET a"),
		on(1, "APPEND", "a", "x"),
		awaitPush(0),
		cmd("GET a"),
		on(1, "EXPIRE", "a", "100"),
		awaitPush(0),
		cmd("STRLEN a"),
		on(1, "INCRBYFLOAT", "a", "0"),
		noPush(0),
		cmd("GET n"),
		on(1, "INCR", "n"),
		awaitPush(0),
		cmd("GET k"),
		on(1, "FLUSHALL"),
		awaitPush(0),
		cmd("PING"),
	}},
	{"own-writes-and-noloop", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON"),
		cmd("GET k"),
		cmd("SET k v"),
		awaitPush(0),
		cmd("CLIENT TRACKING ON NOLOOP"),
		cmd("GET k"),
		cmd("SET k v2"),
		noPush(0),
		cmd("GET k"),
		on(1, "SET", "k", "v3"),
		awaitPush(0),
	}},
	{"optin", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON OPTIN"),
		cmd("GET k"),
		on(1, "SET", "k", "v"),
		noPush(0),
		cmd("CLIENT CACHING YES"),
		cmd("GET k"),
		on(1, "SET", "k", "v2"),
		awaitPush(0),
		cmd("CLIENT CACHING YES"),
		cmd("PING"),
		cmd("GET k"),
		on(1, "SET", "k", "v3"),
		noPush(0),
	}},
	{"optin-multi-like-rueidis", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON OPTIN"),
		cmd("SET k v PX 100000"),
		cmd("CLIENT CACHING YES"),
		cmd("MULTI"),
		cmd("PTTL k"),
		cmd("GET k"),
		cmd("EXEC").with(func(a, b Reply) string {
			if len(a.Elems) != 2 || len(b.Elems) != 2 {
				return "want a two-element EXEC reply"
			}
			return intWithin(1000)(a.Elems[0], b.Elems[0]) + firstDiff(a.Elems[1], b.Elems[1])
		}),
		on(1, "SET", "k", "v2"),
		awaitPush(0),
		cmd("GET k"),
		on(1, "SET", "k", "v3"),
		noPush(0),
	}},
	{"optout", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON OPTOUT"),
		cmd("GET k"),
		on(1, "SET", "k", "v"),
		awaitPush(0),
		cmd("CLIENT CACHING NO"),
		cmd("GET k"),
		on(1, "SET", "k", "v2"),
		noPush(0),
	}},
	{"bcast", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON BCAST PREFIX user: PREFIX session:"),
		on(1, "SET", "user:1", "x"),
		awaitPush(0),
		on(1, "SET", "other", "x"),
		noPush(0),
		on(1, "SET", "session:9", "x"),
		awaitPush(0),
		cmd("CLIENT TRACKING ON BCAST PREFIX a PREFIX ab"),
		cmd("CLIENT TRACKING OFF"),
		cmd("CLIENT TRACKING ON PREFIX user:"),
		on(1, "SET", "user:1", "y"),
		noPush(0),
	}},
	{"expiry-invalidates", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON"),
		cmd("SET e v PX 50"),
		cmd("GET e"),
		awaitPush(0),
		cmd("GET e"),
	}},
	{"tracking-off-stops", []step{
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON"),
		cmd("GET k"),
		cmd("CLIENT TRACKING OFF"),
		on(1, "SET", "k", "v"),
		noPush(0),
	}},
}

// firstDiff is "" when two replies are equal, else a reason.
func firstDiff(a, b Reply) string {
	if a.Equal(b) {
		return ""
	}
	return "; want " + a.String() + ", got " + b.String()
}
