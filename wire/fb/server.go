package fb

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/internal/listener"
	"github.com/sluicedb/sluice/wire/internal/tlsconf"
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

	// TLSCertFile and TLSKeyFile, when set, make the server speak TLS, and
	// only TLS, exactly as the RESP server's fields of the same names: the
	// PEM files of its certificate chain and private key, read again when
	// they change (Server.ReloadTLS). To serve TLS and plaintext side by
	// side, attach two Servers, one per address (sluice's --fb-tls-port
	// beside --fb-port). TLS 1.2 is the oldest version accepted.
	TLSCertFile string
	TLSKeyFile  string
	// TLSCAFile, when set, is a PEM bundle of the certificate authorities
	// that sign client certificates: every client must then present one
	// they signed, or its handshake fails. A client certificate does not
	// replace the password (requirepass, ACL users), as in Redis.
	TLSCAFile string
}

// Server serves a node to FlatBuffers clients. It implements node.Server:
// attach it with Node.Attach and the node serves and closes it, or call
// Serve and Close directly.
type Server struct {
	node      *node.Node
	log       *slog.Logger
	maxFrame  int
	protected bool                      // protected mode is on
	tls       *tlsconf.Files            // nil: plaintext
	conns     *listener.Listener[*conn] // accepts and tracks the connections
}

var (
	_ node.Server = (*Server)(nil)
	_ node.Conn   = (*conn)(nil)
)

// errMaxFrame is NewServer's error for a MaxFrame out of range.
var errMaxFrame = errors.New("fb: Config.MaxFrame must be between 0 and MaxFrameLimit")

// NewServer returns a server for n, listening on cfg.Addr (or serving
// cfg.Listener). It accepts no client until Serve. It fails when the TLS
// files do not load.
func NewServer(n *node.Node, cfg Config) (*Server, error) {
	maxFrame := cfg.MaxFrame
	if maxFrame == 0 {
		maxFrame = DefaultMaxFrame
	}
	if maxFrame < 0 || maxFrame > MaxFrameLimit {
		return nil, errMaxFrame
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var files *tlsconf.Files
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" || cfg.TLSCAFile != "" {
		var err error
		if files, err = tlsconf.Load("fb", cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile, log); err != nil {
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
	return &Server{node: n, log: log, maxFrame: maxFrame, protected: !cfg.DisableProtectedMode, tls: files, conns: listener.New[*conn](ln, log, "fb")}, nil
}

// ReloadTLS reads the TLS certificate, key and CA files again, at once, for
// a SIGHUP handler; the server also notices changed files by itself within
// a second of the next connection. Connections made from now on use the
// new material; established ones keep theirs. When the files do not load,
// the server keeps the material it has and ReloadTLS returns the error. On
// a server without TLS it does nothing.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.Reload()
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
func (s *Server) Close(ctx context.Context) error { return s.conns.Close(ctx) }

// The connection's side of listener.Conn.

// Serve runs the connection.
func (c *conn) Serve() { c.serve() }

// Stop asks the connection to finish and close.
func (c *conn) Stop() { c.stop() }

// Kill closes the connection now: the socket, not the TLS session, whose
// close would first try to send an alert.
func (c *conn) Kill() {
	c.raw.Close()
}
