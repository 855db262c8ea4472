package cluster

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The cluster port carries several protocols on one listener: a dialer's
// first byte says which. Unknown bytes close the connection, so a stray
// client (redis-cli on the wrong port) costs nothing.
const (
	// protoRaft is raft's NetworkTransport (msgpack RPCs).
	protoRaft byte = 'r'
	// protoPeer is the framed peer protocol of Forward (see peer.go), which
	// issue 8's replication and hand-off extend with message types.
	protoPeer byte = 'p'
)

// handshakeTimeout bounds how long an accepted connection may take to send
// its protocol byte.
const handshakeTimeout = 5 * time.Second

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
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		c.untrack(conn)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
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
	advertise net.Addr
	conns     chan net.Conn
	done      chan struct{}
	once      sync.Once
}

func newStreamLayer(n Network, advertise net.Addr) *streamLayer {
	return &streamLayer{net: n, advertise: advertise, conns: make(chan net.Conn), done: make(chan struct{})}
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
	return dialProto(ctx, s.net, string(address), protoRaft)
}

// dialProto dials the cluster port at addr and chooses proto.
func dialProto(ctx context.Context, n Network, addr string, proto byte) (net.Conn, error) {
	conn, err := n.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(d)
	}
	if _, err := conn.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// tcpAddr is an advertised host:port as a net.Addr.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
