package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The cluster port carries several protocols on one listener: a dialer's
// first byte says which (after the handshake of auth.go, when the cluster
// has a secret). Unknown bytes close the connection, so a stray client
// (redis-cli on the wrong port) costs nothing.
const (
	// protoRaft is raft's NetworkTransport (msgpack RPCs).
	protoRaft byte = 'r'
	// protoPeer is the framed peer protocol of Forward (see peer.go), which
	// issue 8's replication and hand-off extend with message types.
	protoPeer byte = 'p'
)

// serveClusterPort accepts on the cluster port and hands each connection
// to the protocol its first byte names.
func (c *Cluster) serveClusterPort() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return // closed
		}
		if !c.track(conn) {
			conn.Close()
			return
		}
		c.wg.Add(1)
		go c.route(conn)
	}
}

func (c *Cluster) route(conn net.Conn) {
	defer c.wg.Done()
	var b [1]byte
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	// TLS first (tls.go), when the node has certificates or a secret; then
	// the HMAC handshake inside it, when it has a secret.
	sconn, err := secureAccepted(conn, c.net, c.secret)
	if err != nil {
		c.log.Warn("cluster port: TLS handshake failed, closing", "from", conn.RemoteAddr().String(), "err", err)
		c.untrack(conn)
		return
	}
	if sconn != conn {
		// Track what the protocols close: closing it closes conn.
		c.forget(conn)
		if !c.track(sconn) {
			sconn.Close()
			return
		}
		conn = sconn
	}
	if err := authenticateAccepted(conn, c.secret); err != nil {
		c.log.Warn("cluster port: handshake failed, closing", "from", conn.RemoteAddr().String(), "err", err)
		c.untrack(conn)
		return
	}
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		c.untrack(conn)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	switch b[0] {
	case protoRaft:
		c.forget(conn) // raft's transport owns it now
		if !c.stream.deliver(conn) {
			conn.Close()
		}
	case protoPeer:
		c.servePeer(conn)
	default:
		c.log.Warn("cluster port: unknown protocol, closing", "from", conn.RemoteAddr().String(), "byte", b[0])
		c.untrack(conn)
	}
}

// streamLayer is raft's view of the cluster port: the connections that
// chose protoRaft, and dials that choose it.
type streamLayer struct {
	net       Network
	secret    []byte // Config.ClusterSecret
	advertise net.Addr
	conns     chan net.Conn
	done      chan struct{}
	once      sync.Once
}

func newStreamLayer(n Network, secret []byte, advertise net.Addr) *streamLayer {
	return &streamLayer{net: n, secret: secret, advertise: advertise, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (s *streamLayer) deliver(conn net.Conn) bool {
	select {
	case s.conns <- conn:
		return true
	case <-s.done:
		return false
	}
}

// Accept implements net.Listener for raft.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; the mux owns the real listener.
func (s *streamLayer) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// Addr is the advertised cluster address: raft takes it as its own.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialProto(ctx, s.net, s.secret, string(address), protoRaft)
}

// dialProto dials the cluster port at addr, runs TLS when the node has
// certificates (n from WithTLS) or a secret (see tls.go), proves it holds
// secret (when set) and checks that the listener does too, and chooses
// proto. Every dial to the cluster port, raft's and Forward's, goes through
// it.
func dialProto(ctx context.Context, n Network, secret []byte, addr string, proto byte) (net.Conn, error) {
	raw, err := n.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(handshakeTimeout)
	}
	_ = raw.SetDeadline(d)
	hctx, cancel := context.WithDeadline(ctx, d)
	conn, err := secureDialed(hctx, raw, n, secret)
	cancel()
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("cluster port TLS handshake with %s: %w", addr, err)
	}
	if err := authenticateDialed(conn, secret); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// tcpAddr is an advertised host:port as a net.Addr.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
