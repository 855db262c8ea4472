package resp

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// TestEventLoop checks that plaintext TCP connections are served by the
// event loops, with their sockets out of Go's netpoller, and that closing
// the server stops the loops.
func TestEventLoop(t *testing.T) {
	_, s := startServer(t, node.Config{}, Config{EventLoops: 1})
	a, b := dial(t, s), dial(t, s)
	for _, c := range []*client{a, b} {
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		sc := connOf(t, s, c)
		sc.mu.Lock()
		lp, nc := sc.lp, sc.nc
		sc.mu.Unlock()
		if lp == nil {
			t.Fatal("a plaintext connection is not on an event loop")
		}
		if _, ok := nc.(*fdConn); !ok {
			t.Fatalf("the connection's socket is a %T, want *fdConn", nc)
		}
	}
	if n := len(s.loops.all); n == 0 {
		t.Fatal("no event loop started")
	}
	n, s2 := startNode(t, node.Config{})
	dial(t, s2).do("PING")
	loops := s2.loops
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		loops.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the event loops still run after the server closed")
	}
}

// TestEventLoopStuckTurn has one client's turn wait, as a forwarded
// command or the replication barrier does, and checks that the other
// clients of its loop are served meanwhile, and that the waiting client
// gets its reply and is served by the loop again afterwards.
func TestEventLoopStuckTurn(t *testing.T) {
	// Reset after the server closes (cleanups run last first).
	t.Cleanup(func() { turnHook = nil })
	var slow atomic.Pointer[conn]
	turnHook = func(c *conn) {
		if slow.CompareAndSwap(c, nil) {
			time.Sleep(500 * time.Millisecond)
		}
	}
	_, s := startServer(t, node.Config{}, Config{EventLoops: 1})
	a, b := dial(t, s), dial(t, s)
	a.do("PING")
	b.do("PING")
	sa := connOf(t, s, a)
	// With no turn running the watchdog sleeps (an idle server does not
	// wake every millisecond); the stuck turn below must wake it.
	for deadline := time.Now().Add(5 * time.Second); !s.loops.asleep.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watchdog still ticks while no turn runs")
		}
	}
	slow.Store(sa)
	start := time.Now()
	io.WriteString(a.nc, "PING\r\n")
	time.Sleep(20 * time.Millisecond) // a's turn has begun
	for range 10 {
		if got := b.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Fatalf("another client of the loop waited %v for the stuck turn", d)
	}
	if got, err := readReply(a.r); got != "+PONG\r\n" {
		t.Fatalf("the stuck client's reply: %q, %v", got, err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("the stuck client's reply came after %v", d)
	}
	for _, c := range []*client{a, b} {
		for range 3 {
			if got := c.do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING after: %q", got)
			}
		}
	}
	sa.mu.Lock()
	lp := sa.lp
	sa.mu.Unlock()
	if lp == nil {
		t.Fatal("the stuck client left the event loop")
	}
}

// TestEventLoopCount: Config.EventLoops sets how many loops serve the
// plaintext connections, which are spread over all of them.
func TestEventLoopCount(t *testing.T) {
	_, s := startServer(t, node.Config{}, Config{EventLoops: 3})
	seen := map[*loop]bool{}
	for range 6 {
		c := dial(t, s)
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		sc := connOf(t, s, c)
		sc.mu.Lock()
		seen[sc.lp] = true
		sc.mu.Unlock()
	}
	if len(s.loops.all) != 3 || len(seen) != 3 {
		t.Fatalf("%d loops, %d of them serving 6 connections; want 3 and 3", len(s.loops.all), len(seen))
	}
}

// TestEventLoopRepliesAfterRound: a loop runs the requests of every client
// ready in a round before it writes any of their replies, as Redis's event
// loop does, and then every client gets its reply.
func TestEventLoopRepliesAfterRound(t *testing.T) {
	t.Cleanup(func() { turnHook = nil })
	// The hook is set before the loop starts (it reads it without a lock);
	// the connections it watches are filled in once known.
	var mu sync.Mutex
	var sg, sa, sb *conn
	var ga, gb *client
	var turns []*conn
	var unsentBefore []int // for each turn of a or b, the other's unsent reply bytes
	turnHook = func(c *conn) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c == nil || sg == nil:
		case c == sg:
			// During g's turn, a and b send a request each, so that
			// both are ready in the loop's next round.
			io.WriteString(ga.nc, "PING\r\n")
			io.WriteString(gb.nc, "PING\r\n")
		case c == sa || c == sb:
			other := sb
			if c == sb {
				other = sa
			}
			other.mu.Lock()
			unsentBefore = append(unsentBefore, len(other.w.b))
			other.mu.Unlock()
			turns = append(turns, c)
		}
	}
	_, s := startServer(t, node.Config{}, Config{EventLoops: 1})
	g, a, b := dial(t, s), dial(t, s), dial(t, s)
	cg, ca, cb := connOf(t, s, g), connOf(t, s, a), connOf(t, s, b)
	mu.Lock()
	sg, sa, sb, ga, gb = cg, ca, cb, a, b
	mu.Unlock()

	if got := g.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	for _, c := range []*client{a, b} {
		if got, err := readReply(c.r); got != "+PONG\r\n" {
			t.Fatalf("reply: %q, %v", got, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(turns) != 2 {
		t.Fatalf("%d turns of the two clients, want 2", len(turns))
	}
	// The second turn of the round ran while the first one's reply was
	// still unsent.
	if unsentBefore[1] == 0 {
		t.Fatalf("the first client's reply was written before the second client's turn (unsent: %v)", unsentBefore)
	}
}
