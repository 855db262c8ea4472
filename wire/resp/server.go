package resp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/node"
)

// DefaultAddr is where a server listens when Config.Addr is empty: the Redis
// port on loopback, so that a node is not reachable from other hosts unless
// it is told to be.
const DefaultAddr = "127.0.0.1:6379"

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on; DefaultAddr when empty. Name an
	// address such as ":6379" to serve other hosts, with requirepass set
	// (see DisableProtectedMode).
	Addr string
	// Listener, when set, is served instead of listening on Addr. Tests pass
	// one on port 0.
	Listener net.Listener
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger

	// TLSCertFile and TLSKeyFile, when set, make the server speak TLS, and
	// only TLS: they are the PEM files of the certificate chain it presents
	// and of its private key. To serve TLS and plaintext side by side, as
	// Redis's port and tls-port do, attach two Servers to the node, one per
	// address. The files are read again when they change (see
	// Server.ReloadTLS), so certificates rotate without a restart. TLS 1.2
	// is the oldest version accepted.
	TLSCertFile string
	TLSKeyFile  string
	// TLSCAFile, when set, is a PEM bundle of the certificate authorities
	// that sign client certificates: every client must then present a
	// certificate that one of them signed, or its handshake fails (Redis's
	// tls-auth-clients yes). Without it, clients are not asked for one.
	TLSCAFile string

	// DisableProtectedMode turns protected mode off. Protected mode is
	// Redis's guard against a server exposed by mistake: while no password
	// is set (the node's requirepass, which CONFIG SET may change at any
	// time), a client connecting from another host than this one is told
	// so, with Redis's "-DENIED ..." error, and disconnected. A server
	// listening on loopback only is not affected. Each client is judged when
	// it connects (after its TLS handshake); a client certificate does not
	// count as a password, as in Redis.
	DisableProtectedMode bool
}

// Server serves a node to RESP clients. It implements node.Server: attach it
// with Node.Attach and the node serves and closes it, or call Serve and
// Close directly.
type Server struct {
	node      *node.Node
	ln        net.Listener
	log       *slog.Logger
	tls       *tlsFiles // nil: plaintext
	protected bool      // protected mode is on
	// maxQuery bounds the request a connection is reading (queryBufLimit);
	// a field so that tests can lower it.
	maxQuery int
	closing  atomic.Bool
	lnClose  sync.Once

	mu    sync.Mutex
	conns map[*conn]struct{} // open connections
	wg    sync.WaitGroup     // their goroutines
}

var (
	_ node.Server = (*Server)(nil)
	_ node.Conn   = (*conn)(nil)
	_ node.Writer = (*writer)(nil)
)

// New returns a server for n, listening on cfg.Addr (or serving
// cfg.Listener). It accepts no client until Serve. It fails when the TLS
// files do not load.
func New(n *node.Node, cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		node:      n,
		log:       log,
		protected: !cfg.DisableProtectedMode,
		maxQuery:  queryBufLimit,
		conns:     make(map[*conn]struct{}),
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" || cfg.TLSCAFile != "" {
		var err error
		if s.tls, err = newTLSFiles(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile, log); err != nil {
			return nil, err
		}
	}
	s.ln = cfg.Listener
	if s.ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = DefaultAddr
		}
		var err error
		if s.ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts clients, each served by its own goroutine, until Close; it
// then returns nil. It returns the listener's error if the listener fails
// for another reason. Like net/http, it waits and retries after other
// accept errors, such as running out of file descriptors.
func (s *Server) Serve() error {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("resp: accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// forget unregisters a connection whose goroutine is ending.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops accepting clients and closes the connections: each finishes
// the command it is running (commands it has read but not started are not
// run), its replies are written, and it is closed. Close returns when every
// connection is gone, or when ctx ends, after which it drops the
// connections still open, with their pending output, and returns ctx's
// error.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.lnClose.Do(func() { s.ln.Close() })
	for _, c := range conns {
		c.stop()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.mu.Lock()
			c.closeLocked()
			c.mu.Unlock()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}
