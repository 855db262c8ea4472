package fb

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/sluicedb/sluice/node"
)

// gate is a proxy between a client and a server that can hold back what
// the server sends: while held, each chunk read from the server waits
// until release, and arrived reports it.
type gate struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	held    bool
	queued  [][]byte
	client  net.Conn
	arrived chan struct{} // a chunk from the server was held back
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, arrived: make(chan struct{}, 64)}
	t.Cleanup(func() { ln.Close() })
	go g.serve(t)
	return g
}

func (g *gate) serve(t *testing.T) {
	for {
		cn, err := g.ln.Accept()
		if err != nil {
			return
		}
		sn, err := net.Dial("tcp", g.target)
		if err != nil {
			cn.Close()
			continue
		}
		t.Cleanup(func() { cn.Close(); sn.Close() })
		g.mu.Lock()
		g.client = cn
		g.mu.Unlock()
		go io.Copy(sn, cn)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := sn.Read(buf)
				if n > 0 {
					chunk := append([]byte(nil), buf[:n]...)
					g.mu.Lock()
					if g.held || len(g.queued) > 0 {
						g.queued = append(g.queued, chunk)
						g.mu.Unlock()
						g.arrived <- struct{}{}
					} else {
						_, werr := cn.Write(chunk)
						g.mu.Unlock()
						if werr != nil {
							return
						}
					}
				}
				if err != nil {
					cn.Close()
					return
				}
			}
		}()
	}
}

func (g *gate) hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

// release sends what was held back and lets the rest through.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = false
	for _, c := range g.queued {
		g.client.Write(c)
	}
	g.queued = nil
}

// TestLeaderCanceled: the caller reading the connection for its own
// response (the leader) returns when its context ends, though the response
// has not arrived; and a caller waiting while another reads returns when
// its context ends. Their responses, arriving later, are dropped, and the
// connection stays in step.
func TestLeaderCanceled(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{})
	for _, k := range []string{"a", "b", "c"} {
		if err := n.Set(context.Background(), k, []byte("value of "+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	g := newGate(t, s.Addr())
	c, err := DialOptions(g.ln.Addr().String(), Options{Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A lone caller leads; its context ends once the response is held.
	g.hold()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	var a Batch
	a.Get("a")
	go func() { errc <- c.Do(ctx, &a) }()
	<-g.arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the leader whose context ended: %v", err)
	}

	// The next caller leads, with no end to its context, and another
	// waits behind it with one that ends.
	var b, w Batch
	b.Get("b")
	w.Get("c")
	go func() { errc <- c.Do(context.Background(), &b) }()
	<-g.arrived
	wctx, wcancel := context.WithCancel(context.Background())
	werrc := make(chan error, 1)
	go func() { werrc <- c.Do(wctx, &w) }()
	<-g.arrived
	wcancel()
	if err := <-werrc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiting caller whose context ended: %v", err)
	}
	g.release()
	if err := <-errc; err != nil {
		t.Fatalf("the leader: %v", err)
	}
	if v, _ := b.Result(0).Value(); string(v) != "value of b" {
		t.Errorf("the leader read %q", v)
	}
	for _, k := range []string{"a", "b", "c"} {
		var r Batch
		r.Get(k)
		do(t, c, &r)
		if v, _ := r.Result(0).Value(); string(v) != "value of "+k {
			t.Errorf("GET %s after the abandoned calls: %q", k, v)
		}
	}
}
