package fb

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

// DefaultAddr is where a server listens when Config.Addr is empty: port
// 6380 on loopback, so that a node is not reachable from other hosts unless
// it is told to be.
const DefaultAddr = "127.0.0.1:6380"

// Frame limits. A frame is a 4-byte little-endian length and that many bytes
// of one FlatBuffers message; the limits count the message, not the prefix.
const (
	// DefaultMaxFrame is the largest message a server reads or builds, and a
	// client accepts, unless configured otherwise: room for a batch of large
	// values while bounding what one connection can make the server hold.
	DefaultMaxFrame = 64 << 20
	// MaxFrameLimit is the most MaxFrame may be set to. FlatBuffers offsets
	// are 32-bit and the Go runtime assumes positions below 2^31.
	MaxFrameLimit = 1 << 30
	// unauthMaxFrame is the largest frame read from a connection that has
	// not authenticated while the server has a password, as Redis limits
	// such clients to bulks of 16 KiB: enough for an AUTH, too little for
	// a stranger to make the server buffer much.
	unauthMaxFrame = 16 << 10
	// MaxOps is the most operations one request may carry; a larger request
	// is refused with an error response and the connection stays open.
	MaxOps = 1 << 16
)

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on; DefaultAddr when empty. Name an
	// address such as ":6380" to serve other hosts, with requirepass set.
	Addr string
	// Listener, when set, is served instead of listening on Addr. Tests pass
	// one on port 0.
	Listener net.Listener
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// MaxFrame is the largest request message the server reads and the
	// largest response it sends, in bytes; DefaultMaxFrame when 0, at most
	// MaxFrameLimit. Clients must accept responses this large.
	MaxFrame int
	// DisableProtectedMode turns protected mode off. Protected mode, as on
	// the RESP port, refuses clients from other hosts while the default
	// user has no password.
	DisableProtectedMode bool
}

// Server serves a node to FlatBuffers clients. It implements node.Server:
// attach it with Node.Attach and the node serves and closes it, or call
// Serve and Close directly.
type Server struct {
	node      *node.Node
	ln        net.Listener
	log       *slog.Logger
	maxFrame  int
	protected bool // protected mode is on
	closing   atomic.Bool
	lnClose   sync.Once

	mu    sync.Mutex
	conns map[*conn]struct{} // open connections
	wg    sync.WaitGroup     // their goroutines
}

var (
	_ node.Server = (*Server)(nil)
	_ node.Conn   = (*conn)(nil)
)

// errMaxFrame is NewServer's error for a MaxFrame out of range.
var errMaxFrame = errors.New("fb: Config.MaxFrame must be between 0 and MaxFrameLimit")

// NewServer returns a server for n, listening on cfg.Addr (or serving
// cfg.Listener). It accepts no client until Serve.
func NewServer(n *node.Node, cfg Config) (*Server, error) {
	maxFrame := cfg.MaxFrame
	if maxFrame == 0 {
		maxFrame = DefaultMaxFrame
	}
	if maxFrame < 0 || maxFrame > MaxFrameLimit {
		return nil, errMaxFrame
	}
	ln := cfg.Listener
	if ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = DefaultAddr
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{node: n, ln: ln, log: log, maxFrame: maxFrame, protected: !cfg.DisableProtectedMode, conns: make(map[*conn]struct{})}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts clients, each served by its own goroutine, until Close; it
// then returns nil. It returns the listener's error if the listener fails
// for another reason, and waits and retries after other accept errors, such
// as running out of file descriptors.
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
			s.log.Error("fb: accept failed", "err", err, "retry_in", delay)
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
// the request it is running (requests it has read but not started are not
// run), its responses are written, and it is closed. Close returns when
// every connection is gone, or when ctx ends, after which it drops the
// connections still open and returns ctx's error.
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
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}
