package fb

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/internal/protected"
	"github.com/sluicedb/sluice/wire/internal/tlsconf"
)

// Tuning of a server connection's buffers.
const (
	// inSize is the input buffer a connection starts with; it doubles while
	// a frame needs more, so it grows only with data that has arrived.
	inSize = 16 << 10
	// flushSize is how much output a run of pipelined requests collects
	// before it is written without waiting for the run's end.
	flushSize = 64 << 10
	// keepBuf is the largest input buffer, output buffer or builder kept
	// between requests; a larger one, grown for a large frame, is dropped
	// once that frame is done, so idle connections do not hoard memory.
	keepBuf = 1 << 20
	// lingerTimeout is how long a connection closed after an error frame
	// reads and discards what the client still sends, so that closing a
	// socket with unread input does not reset it before the client has read
	// the error.
	lingerTimeout = 500 * time.Millisecond
)

// Errors of the framing layer.
const (
	errFrameTooLarge    frameError = "ERR Protocol error: frame length over the limit"
	errResponseTooLarge frameError = "ERR the response would exceed the maximum frame size"
)

// end is why a connection's loop stopped.
type end int

const (
	endBroken   end = iota // read or write failed: close now
	endIdle                // idle timeout: close without a word, as Redis does
	endProtocol            // malformed input: an error frame is queued; flush, linger, close
	endShutdown            // the server is closing: flush, then close
)

// conn is one client connection, served by one goroutine that reads
// frames, runs each request and appends its response to out; responses
// are written when no complete request is left in the input, so a
// pipelined run of requests costs one read and one write.
type conn struct {
	s   *Server
	nc  net.Conn // what the connection is read and written through
	raw net.Conn // the socket: nc, or what nc encrypts with TLS

	// in[r:w] has been read and not run yet; want is the number of bytes
	// the frame at r needs in all, once its length is known.
	in      []byte
	r, w    int
	want    int
	out     []byte
	runner  runner
	timeout time.Duration // the idle timeout armed for the current read
	wtimed  bool          // a write deadline is set

	mu      sync.Mutex  // orders stop and Close against arming the read deadline
	stopped atomic.Bool // the server is closing (Server.Close)
	killed  atomic.Bool // the node closed the client (Close)
}

func newConn(s *Server, raw net.Conn) *conn {
	nc := raw
	if s.tls != nil {
		nc = tls.Server(raw, s.tls.Config())
	}
	return &conn{s: s, nc: nc, raw: raw}
}

// serve runs the connection until it ends. The connection is a client of
// the node like a RESP one: it counts against maxclients, CLIENT LIST shows
// it, and CLIENT KILL or deleting its ACL user closes it.
func (c *conn) serve() {
	defer c.nc.Close()
	c.runner.init(c.s, nil)
	sess, err := c.s.node.Connect(c, c.raw.RemoteAddr().String(), c.raw.LocalAddr().String())
	switch {
	case errors.Is(err, node.ErrMaxClients) && c.s.tls == nil:
		c.refuse(err.Error())
		return
	case err != nil:
		// The node is closed; or a TLS client is over maxclients, and is
		// dropped before its handshake, as the RESP port does: sparing the
		// handshake is the point.
		return
	}
	defer sess.Disconnect()
	if tc, ok := c.nc.(*tls.Conn); ok && !c.handshake(tc) {
		return
	}
	if protected.Refuses(c.s.node, c.s.protected, c.raw.RemoteAddr()) {
		c.s.log.Debug("fb: client refused by protected mode", "client", c.raw.RemoteAddr().String())
		c.refuse(errProtectedMode)
		return
	}
	c.runner.sess = sess
	switch c.loop() {
	case endProtocol:
		if c.flush() {
			c.linger()
		}
	case endShutdown:
		c.flush()
	}
}

// handshake runs the TLS handshake within tlsconf.HandshakeTimeout.
// Server.Close and CLIENT KILL interrupt it.
func (c *conn) handshake(tc *tls.Conn) bool {
	c.mu.Lock()
	if c.stopped.Load() || c.killed.Load() {
		c.mu.Unlock()
		return false
	}
	c.raw.SetDeadline(time.Now().Add(tlsconf.HandshakeTimeout))
	c.mu.Unlock()
	err := tc.Handshake()
	c.mu.Lock()
	c.raw.SetWriteDeadline(time.Time{})
	if !c.stopped.Load() && !c.killed.Load() { // their deadline must stay
		c.raw.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if err != nil {
		c.s.log.Info("fb: TLS handshake failed", "client", c.raw.RemoteAddr().String(), "err", err)
		return false
	}
	return true
}

// refuse answers with an error frame (id 0) before any request and closes.
func (c *conn) refuse(msg string) {
	c.out = c.runner.refusal(c.out, 0, msg)
	if c.flush() {
		c.linger()
	}
}

// Send would write an out-of-band message (a client-side caching
// invalidation); this protocol has none, and its clients cannot turn
// tracking on, so there is nothing to send.
func (c *conn) Send(func(w node.Writer)) {}

// Close disconnects the client (CLIENT KILL, or its ACL user deleted): the
// request it is running finishes and its response is written first.
func (c *conn) Close() error {
	c.killed.Store(true)
	c.mu.Lock()
	c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
	return nil
}

// loop reads and runs requests until the connection ends.
func (c *conn) loop() end {
	for {
		for {
			if c.s.conns.Closing() || c.killed.Load() {
				return endShutdown
			}
			frame, err := c.next()
			if err != nil {
				c.s.log.Debug("fb: protocol error", "client", c.nc.RemoteAddr().String(), "err", err)
				c.out = c.runner.refusal(c.out, 0, err.Error())
				return endProtocol
			}
			if frame == nil {
				break
			}
			var fatal bool
			if c.out, fatal = c.runner.handle(c.out, frame); fatal {
				c.s.log.Debug("fb: malformed request", "client", c.nc.RemoteAddr().String())
				return endProtocol
			}
			if len(c.out) >= flushSize && !c.flush() {
				return endBroken
			}
		}
		if !c.flush() {
			return endBroken
		}
		c.shrink()
		if err := c.fill(); err != nil {
			switch {
			case c.stopped.Load() || c.killed.Load():
				return endShutdown
			case errors.Is(err, os.ErrDeadlineExceeded) && c.timeout > 0:
				return endIdle
			}
			return endBroken
		}
	}
}

// next returns the next complete frame's message, a slice of the input
// buffer valid until the next fill, or nil when the input holds no
// complete frame. A length over the limit is an error at once, before
// anything is buffered for it.
func (c *conn) next() ([]byte, error) {
	avail := c.w - c.r
	if avail < 4 {
		c.want = 4
		return nil, nil
	}
	n := int(binary.LittleEndian.Uint32(c.in[c.r:]))
	limit := c.s.maxFrame
	if !c.runner.authed() {
		limit = min(limit, unauthMaxFrame)
	}
	if n > limit {
		return nil, errFrameTooLarge
	}
	if avail < 4+n {
		c.want = 4 + n
		return nil, nil
	}
	frame := c.in[c.r+4 : c.r+4+n : c.r+4+n]
	c.r += 4 + n
	return frame, nil
}

// fill reads what the client has sent, at least one byte, making room for
// the frame in progress: it moves the unread bytes to the front and, when
// the buffer is full, doubles it (up to the frame's size).
func (c *conn) fill() error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	if c.in == nil {
		c.in = make([]byte, inSize)
	}
	if c.r > 0 && c.r+c.want > len(c.in) {
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.in) {
		// Double, but no further than the frame needs (and always by something).
		grown := make([]byte, min(2*len(c.in), max(c.want, len(c.in)+inSize)))
		copy(grown, c.in[:c.w])
		c.in = grown
	}
	if !c.armDeadline() {
		return os.ErrDeadlineExceeded
	}
	n, err := c.nc.Read(c.in[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	return err
}

// shrink drops buffers grown for a large frame once they are idle.
func (c *conn) shrink() {
	if c.r == c.w && len(c.in) > keepBuf {
		c.in, c.r, c.w = nil, 0, 0
	}
	if cap(c.out) > keepBuf {
		c.out = nil
	}
	c.runner.shrink()
}

// flush writes the pending responses, waiting for the client to take them.
// With an idle timeout, a client that takes nothing for that long is
// dropped.
func (c *conn) flush() bool {
	if len(c.out) == 0 {
		return true
	}
	if s := c.runner.sess; s != nil && !s.AwaitReplicas() {
		// The replicas did not confirm the writes (SET, THROTTLE) these
		// responses acknowledge: close without sending them.
		c.out = c.out[:0]
		return false
	}
	switch idle := c.s.node.Limits().IdleTimeout; {
	case idle > 0:
		c.nc.SetWriteDeadline(time.Now().Add(idle))
		c.wtimed = true
	case c.wtimed: // the timeout was turned off since
		c.nc.SetWriteDeadline(time.Time{})
		c.wtimed = false
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	return err == nil
}

// armDeadline sets the read deadline for the idle timeout before a read,
// unless the server is closing, which it reports with false.
func (c *conn) armDeadline() bool {
	idle := c.s.node.Limits().IdleTimeout
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped.Load() || c.killed.Load() {
		return false
	}
	switch {
	case idle > 0:
		c.nc.SetReadDeadline(time.Now().Add(idle))
	case c.timeout > 0:
		c.nc.SetReadDeadline(time.Time{})
	}
	c.timeout = idle
	return true
}

// stop asks the connection to finish the request it is running, flush and
// close (Server.Close). It interrupts a read in progress.
func (c *conn) stop() {
	c.mu.Lock()
	c.stopped.Store(true)
	c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

// linger half-closes the connection and reads what the client still sends
// for a moment, so that closing it does not reset it before the client has
// read the last frame.
func (c *conn) linger() {
	tc, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || c.stopped.Load() || tc.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	var buf [4 << 10]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}
