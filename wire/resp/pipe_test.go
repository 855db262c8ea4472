package resp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
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
	l, _, stop := startPipeServer(t, node.Config{Limits: lim}, Config{})
	return l, stop
}

// startPipeServer is startPipeNode with the node's and the server's
// configurations.
func startPipeServer(t *testing.T, ncfg node.Config, cfg Config) (*pipeListener, *Server, func()) {
	log := slog.New(slog.DiscardHandler)
	ncfg.Logger = log
	n, err := node.New(ncfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newPipeListener()
	cfg.Listener, cfg.Logger = l, log
	s, err := New(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(s)
	n.Start()
	return l, s, func() {
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

// closedAfter reads replies until the server closes the connection and
// returns how long after start that was.
func closedAfter(t *testing.T, r *bufio.Reader, start time.Time) time.Duration {
	t.Helper()
	for {
		if got, err := readReply(r); err == io.EOF {
			return time.Since(start)
		} else if err != nil {
			t.Fatalf("read: %v", err)
		} else {
			t.Fatalf("unexpected reply %q", got)
		}
	}
}

// TestSlowRequestFakeClock checks the deadline of a request that has
// started arriving (requestStall, requestRate), with the idle timeout off:
// a client that stops mid-request, or trickles bytes (also bytes that make
// no command, such as empty lines), is closed on time, and clients that
// send whole requests, however rarely, or a large one at a modest rate,
// are not.
func TestSlowRequestFakeClock(t *testing.T) {
	trickle := func(c net.Conn, data string, every time.Duration) {
		for i := range len(data) {
			if _, err := io.WriteString(c, data[i:i+1]); err != nil {
				return
			}
			time.Sleep(every)
		}
	}
	tests := []struct {
		name string
		send func(c net.Conn)
		want time.Duration // 0: not closed
	}{
		{"stalled multibulk", func(c net.Conn) { io.WriteString(c, "*2\r\n$3\r\nGET\r\n$100\r\nabc") }, requestStall},
		{"stalled inline", func(c net.Conn) { io.WriteString(c, "PING") }, requestStall},
		// A byte every 5s: the deadline is requestStall after the first one,
		// plus 1s per requestRate bytes; the five that have arrived by then
		// buy 10ms.
		{"trickle", func(c net.Conn) { trickle(c, "*1\r\n$4\r\nPING\r\n", 5*time.Second) }, requestStall + 5*time.Second/requestRate},
		{"trickle of empty lines", func(c net.Conn) { trickle(c, strings.Repeat("\r\n", 20), 5*time.Second) }, requestStall + 5*time.Second/requestRate},
		{"a command every 19s", func(c net.Conn) {
			for range 10 {
				io.WriteString(c, "PING\r\n")
				time.Sleep(19 * time.Second)
			}
		}, 0},
		{"30 KB at 1 KB/s", func(c net.Conn) {
			var b bytes.Buffer
			encode(&b, "SET", "k", strings.Repeat("v", 30000))
			for data := b.Bytes(); len(data) > 0; data = data[min(len(data), 1000):] {
				c.Write(data[:min(len(data), 1000)])
				time.Sleep(time.Second)
			}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, stop := startPipeNode(t, node.Limits{})
				defer stop()
				c, r := l.dial()
				defer c.Close()
				start := time.Now()
				sent := make(chan struct{})
				go func() {
					defer close(sent)
					tt.send(c)
				}()
				defer func() {
					c.Close()
					<-sent
				}()
				if tt.want != 0 {
					if got := closedAfter(t, r, start); got != tt.want {
						t.Fatalf("closed after %v, want %v", got, tt.want)
					}
					return
				}
				ended := make(chan time.Duration, 1)
				go func() {
					for {
						if _, err := readReply(r); err != nil {
							ended <- time.Since(start)
							return
						}
					}
				}()
				time.Sleep(3 * time.Minute)
				select {
				case d := <-ended:
					t.Fatalf("closed after %v", d)
				default:
				}
				c.Close()
				<-ended
			})
		})
	}
}

// TestHandshakeTimeoutFakeClock checks a client that connects to a TLS
// server and sends nothing is closed after handshakeTimeout, and that one
// that completes its handshake is then not bound by it.
func TestHandshakeTimeoutFakeClock(t *testing.T) {
	ts := newTLSSetup(t)
	cfg := ts.clientConfig(false)
	now := time.Now() // the bubble's clock is in 2000, before the certificates
	cfg.Time = func() time.Time { return now }
	synctest.Test(t, func(t *testing.T) {
		l, _, stop := startPipeServer(t, node.Config{}, Config{TLSCertFile: ts.certFile, TLSKeyFile: ts.keyFile})
		defer stop()
		silent, sr := l.dial()
		defer silent.Close()
		if got := closedAfter(t, sr, time.Now()); got != handshakeTimeout {
			t.Fatalf("a client that sent nothing was closed after %v, want %v", got, handshakeTimeout)
		}

		c, _ := l.dial()
		tc := tls.Client(c, cfg)
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(tc)
		ping := func() {
			t.Helper()
			go io.WriteString(tc, "PING\r\n")
			if got, err := readReply(r); got != "+PONG\r\n" {
				t.Fatalf("PING: %q, %v", got, err)
			}
		}
		ping()
		time.Sleep(2 * handshakeTimeout)
		ping()
	})
}

// TestQueryBufferLimit checks a client whose request grows past the limit
// without completing is disconnected, as Redis's client-query-buffer-limit
// does, while requests under it run.
func TestQueryBufferLimit(t *testing.T) {
	l, s, stop := startPipeServer(t, node.Config{}, Config{})
	defer stop()
	s.maxQuery = 64 << 10
	c, r := l.dial()
	defer c.Close()
	var b bytes.Buffer
	encode(&b, "SET", "k", strings.Repeat("v", 60<<10))
	go c.Write(b.Bytes())
	if got, err := readReply(r); got != "+OK\r\n" {
		t.Fatalf("SET under the limit: %q, %v", got, err)
	}
	// Three arguments of 30 KiB each, one at a time, each under
	// proto-max-bulk-len, and the request never completes.
	go func() {
		io.WriteString(c, "*9\r\n$4\r\nMSET\r\n")
		for i := range 3 {
			fmt.Fprintf(c, "$1\r\n%d\r\n$%d\r\n%s\r\n", i, 30<<10, strings.Repeat("v", 30<<10))
		}
	}()
	if got, err := readReply(r); err != io.EOF {
		t.Fatalf("a request over the limit: got %q, %v; want the connection closed", got, err)
	}
}
