package resp

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicedb/sluice/node"
)

// pipeListener hands out in-memory connections, so that a server runs
// inside a synctest bubble on its fake clock. Pipes cannot be written
// without waiting, so these tests also cover the background writer alone.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dial connects a client end to the server's next Accept.
func (l *pipeListener) dial() (net.Conn, *bufio.Reader) {
	c, s := net.Pipe()
	l.conns <- s
	return c, bufio.NewReader(c)
}

// startPipeNode runs a node and a server on a pipeListener; call the
// returned function before the bubble ends.
func startPipeNode(t *testing.T, lim node.Limits) (*pipeListener, func()) {
	log := slog.New(slog.DiscardHandler)
	n, err := node.New(node.Config{Limits: lim, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	l := newPipeListener()
	s, err := New(n, Config{Listener: l, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(s)
	n.Start()
	return l, func() {
		if err := n.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// TestIdleTimeoutFakeClock checks, on synctest's clock, that an idle client
// is closed when the timeout has passed since its last command, not before.
func TestIdleTimeoutFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, stop := startPipeNode(t, node.Limits{IdleTimeout: 10 * time.Second})
		defer stop()
		c, r := l.dial()
		defer c.Close()
		ping := func() {
			io.WriteString(c, "PING\r\n")
			if got, err := readReply(r); got != "+PONG\r\n" {
				t.Fatalf("PING: %q, %v", got, err)
			}
		}
		ping()
		time.Sleep(9 * time.Second)
		ping() // still open; the timeout restarts
		last := time.Now()
		if _, err := readReply(r); err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
		if idle := time.Since(last); idle != 10*time.Second {
			t.Fatalf("closed after %v idle, want 10s", idle)
		}
	})
}

// TestStalledClientFakeClock has a client pipeline GETs of a 1 MiB value
// and never read: the server waits stallTimeout for it, then lets its
// output grow to the limit and drops it, at that moment and not before.
func TestStalledClientFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, stop := startPipeNode(t, node.Limits{OutputBufferLimit: 8 << 20})
		defer stop()
		greedy, gr := l.dial()
		defer greedy.Close()
		other, or := l.dial()
		defer other.Close()
		clients := func() int {
			var b bytes.Buffer
			encode(&b, "CLIENT", "LIST")
			other.Write(b.Bytes())
			got, err := readReply(or)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Count(got, "id=")
		}
		var b bytes.Buffer
		encode(&b, "SET", "big", strings.Repeat("v", 1<<20))
		greedy.Write(b.Bytes())
		if got, _ := readReply(gr); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		b.Reset()
		for range 20 { // 20 MiB of replies
			encode(&b, "GET", "big")
		}
		greedy.Write(b.Bytes()) // returns once the server has read it all
		time.Sleep(stallTimeout - time.Millisecond)
		if n := clients(); n != 2 {
			t.Fatalf("%d clients before the stall timeout, want 2", n)
		}
		time.Sleep(2 * time.Millisecond)
		if n := clients(); n != 1 {
			t.Fatalf("%d clients after the stall timeout, want 1: the stalled one was not dropped", n)
		}
		if _, err := io.Copy(io.Discard, greedy); err != nil {
			t.Fatalf("read: %v", err)
		}
	})
}
