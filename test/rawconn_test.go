package test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// replyTimeout bounds the wait for any one reply: a server that never
// answers fails the step instead of hanging the suite.
const replyTimeout = 5 * time.Second

// rawConn is a RESP client that hides nothing: Do sends an argument vector
// and returns the reply as the server encoded it. Push messages (RESP3 '>')
// that arrive before a reply are kept in pushes, not returned as the reply.
type rawConn struct {
	conn   net.Conn
	r      *bufio.Reader
	pushes []Reply
	dead   bool
	err    error // why the connection died
}

// malformed returns the error that broke the connection if the server sent
// something that is not RESP.
func (c *rawConn) malformed() error {
	var m *malformedError
	if errors.As(c.err, &m) {
		return c.err
	}
	return nil
}

// dialRaw connects to addr; the connection is closed at the end of the test.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, replyTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	rc := &rawConn{conn: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { _ = c.Close() })
	return rc
}

// Do sends one command and returns its reply. A connection the server closed
// gives a reply of kind kindClosed, one that does not answer in replyTimeout
// kindTimeout; either leaves the connection dead.
func (c *rawConn) Do(args ...string) Reply {
	if c.dead {
		return Reply{Kind: kindClosed}
	}
	if err := c.write(encodeCommand(args)); err != nil {
		return c.fail(err)
	}
	return c.Read()
}

// DoRaw sends bytes as they are (inline commands, malformed input) and
// returns the next reply.
func (c *rawConn) DoRaw(b []byte) Reply {
	if c.dead {
		return Reply{Kind: kindClosed}
	}
	if err := c.write(b); err != nil {
		return c.fail(err)
	}
	return c.Read()
}

// Read returns the next reply that is not a push message.
func (c *rawConn) Read() Reply {
	for {
		r, err := c.readOne(replyTimeout)
		if err != nil {
			return c.fail(err)
		}
		if r.Kind != '>' {
			return r
		}
		c.pushes = append(c.pushes, r)
	}
}

// WaitPush returns the oldest push message, waiting up to d for one.
func (c *rawConn) WaitPush(d time.Duration) (Reply, bool) {
	if len(c.pushes) == 0 && !c.dead {
		r, err := c.readOne(d)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Reply{}, false // nothing came: the connection is still in step
		}
		if err != nil {
			c.fail(err)
			return Reply{}, false
		}
		if r.Kind != '>' {
			c.dead = true // a reply nobody asked for: the stream is out of step
			return r, false
		}
		c.pushes = append(c.pushes, r)
	}
	if len(c.pushes) == 0 {
		return Reply{}, false
	}
	p := c.pushes[0]
	c.pushes = c.pushes[1:]
	return p, true
}

func (c *rawConn) readOne(d time.Duration) (Reply, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	return readReply(c.r)
}

func (c *rawConn) write(b []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(replyTimeout))
	_, err := c.conn.Write(b)
	return err
}

// fail turns a read or write error into the synthetic reply that stands for
// it and marks the connection dead.
func (c *rawConn) fail(err error) Reply {
	c.dead = true
	c.err = err
	_ = c.conn.Close()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return Reply{Kind: kindTimeout}
	}
	// EOF, a reset, a broken pipe or a malformed stream: the server is gone
	// or out of step, and either way the connection is over.
	return Reply{Kind: kindClosed}
}

// Close closes the connection.
func (c *rawConn) Close() {
	c.dead = true
	_ = c.conn.Close()
}

// encodeCommand encodes args as a RESP array of bulk strings, the form every
// client library sends.
func encodeCommand(args []string) []byte {
	b := make([]byte, 0, 16+16*len(args))
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
