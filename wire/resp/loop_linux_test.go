package resp

import (
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// TestEventLoop checks that plaintext TCP connections are served by the
// event loops, with their sockets out of Go's netpoller, and that closing
// the server stops the loops.
func TestEventLoop(t *testing.T) {
	_, s := startNode(t, node.Config{})
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
