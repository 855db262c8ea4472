// Package listener is what every protocol server of a node shares: the
// accept loop, the set of open connections, and a Close that lets each
// connection drain before it ends, or drops it when time runs out.
package listener

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one served connection.
type Conn interface {
	comparable
	// Serve runs the connection until it ends.
	Serve()
	// Stop asks it to finish the request it is running, write what it owes
	// and end (from Close; Serve then returns).
	Stop()
	// Kill closes it now, dropping pending output (when Close runs out of time).
	Kill()
}

// Listener accepts connections and tracks them until they end.
type Listener[C Conn] struct {
	ln      net.Listener
	log     *slog.Logger
	name    string // the protocol, for logs
	closing atomic.Bool
	lnClose sync.Once

	mu    sync.Mutex
	conns map[C]struct{} // open connections
	wg    sync.WaitGroup // their goroutines
}

// New returns a Listener over ln; name prefixes its log messages.
func New[C Conn](ln net.Listener, log *slog.Logger, name string) *Listener[C] {
	return &Listener[C]{ln: ln, log: log, name: name, conns: make(map[C]struct{})}
}

// Addr is the address it listens on.
func (l *Listener[C]) Addr() string { return l.ln.Addr().String() }

// Closing reports whether Close has begun.
func (l *Listener[C]) Closing() bool { return l.closing.Load() }

// Serve accepts connections, wraps each with newConn and serves it on its
// own goroutine, until Close; it then returns nil. It returns the listener's
// error if the listener fails for another reason and, like net/http, waits
// and retries after other accept errors, such as running out of file
// descriptors.
func (l *Listener[C]) Serve(newConn func(net.Conn) C) error {
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if l.closing.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.log.Error(l.name+": accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		l.mu.Lock()
		if l.closing.Load() {
			l.mu.Unlock()
			nc.Close()
			return nil
		}
		c := newConn(nc)
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.forget(c)
			c.Serve()
		}()
	}
}

func (l *Listener[C]) forget(c C) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

// Close stops accepting and stops every connection, and returns when they
// are all gone, or when ctx ends: it then kills those still open and
// returns ctx's error.
func (l *Listener[C]) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closing.Store(true)
	conns := make([]C, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.lnClose.Do(func() { l.ln.Close() })
	for _, c := range conns {
		c.Stop()
	}
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		for c := range l.conns {
			c.Kill()
		}
		l.mu.Unlock()
		return ctx.Err()
	}
}

// Range calls fn for each open connection until fn returns false.
func (l *Listener[C]) Range(fn func(C) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if !fn(c) {
			return
		}
	}
}
