package resp

import (
	"context"
	"log/slog"
	"net"
	"runtime"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/internal/listener"
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

	// EventLoops is how many event loops serve plaintext connections on
	// Linux (see doc.go); 0 for DefaultEventLoops.
	EventLoops int
}

// DefaultEventLoops is the number of event loops a Server runs unless
// Config.EventLoops says otherwise: one per P (GOMAXPROCS), so that the
// cores the process may use are the cores its loops run on. The loops park
// in the netpoller when idle, so the process's other goroutines (TLS and
// FlatBuffers connections, replication, the cluster, the garbage
// collector) share the same Ps. On a machine shared with other programs
// (clients, a load generator), cap GOMAXPROCS at the cores Sluice should
// take: on two cores shared with redis-benchmark, one loop on one P kept
// the 99th percentile at 0.70 to 1.01 times Redis's, while two loops on two
// Ps made the slowest 1% of pipelined replies 3 to 6 times slower, and one
// loop beside an idle P (where the runtime starts a spinning thread on
// every wake-up) 10 to 35% slower.
func DefaultEventLoops() int { return runtime.GOMAXPROCS(0) }

// Server serves a node to RESP clients. It implements node.Server: attach it
// with Node.Attach and the node serves and closes it, or call Serve and
// Close directly.
type Server struct {
	node      *node.Node
	log       *slog.Logger
	tls       *tlsFiles // nil: plaintext
	protected bool      // protected mode is on
	// maxQuery bounds the request a connection is reading (queryBufLimit);
	// a field so that tests can lower it.
	maxQuery int
	conns    *listener.Listener[*conn] // accepts and tracks the connections
	loops    *loops                    // event loops for plaintext connections; nil: none
	nloops   int                       // how many (Config.EventLoops)
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
		nloops:    cfg.EventLoops,
	}
	if s.nloops <= 0 {
		s.nloops = DefaultEventLoops()
	}
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" || cfg.TLSCAFile != "" {
		var err error
		if s.tls, err = newTLSFiles(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile, log); err != nil {
			return nil, err
		}
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
	s.conns = listener.New[*conn](ln, log, "resp")
	if s.tls == nil {
		s.loops = newLoops()
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.conns.Addr() }

// Serve accepts clients, each served by its own goroutine, until Close; it
// then returns nil (see listener.Listener.Serve).
func (s *Server) Serve() error {
	return s.conns.Serve(func(nc net.Conn) *conn { return newConn(s, nc) })
}

// Close stops accepting clients and closes the connections: each finishes
// what it is running (what it has read but not started is not run), its
// replies are written, and it is closed. Close returns when every
// connection is gone, or when ctx ends, after which it drops the
// connections still open, with their pending output, and returns ctx's
// error.
func (s *Server) Close(ctx context.Context) error {
	err := s.conns.Close(ctx)
	if s.loops != nil {
		s.loops.close()
	}
	return err
}

// The connection's side of listener.Conn.

// Serve runs the connection.
func (c *conn) Serve() { c.serve() }

// Stop asks the connection to finish and close.
func (c *conn) Stop() { c.stop() }

// Kill closes the connection now.
func (c *conn) Kill() {
	c.mu.Lock()
	c.closeLocked()
	c.mu.Unlock()
}
