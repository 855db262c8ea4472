//go:build unix

package resp

import (
	"net"
	"syscall"
)

// tryWriter writes to a socket without waiting: it hands the kernel what
// its send buffer takes now and reports how much that was. A connection's
// goroutine uses it to write replies itself when the socket has room (the
// common case, which costs one system call and no goroutine switch) and to
// pass the rest to a background writer when it has not, so that a client
// that does not read never blocks the goroutine reading its commands.
type tryWriter struct {
	fd  int // the socket, when raw is nil: an event loop's (loop_linux.go)
	raw syscall.RawConn
	do  func(fd uintptr) bool // t.write, bound once so calls do not allocate
	buf []byte
	n   int
	err error
}

// newTryWriter returns nil when nc is not a socket.
func newTryWriter(nc net.Conn) *tryWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	t := &tryWriter{raw: raw}
	t.do = t.write
	return t
}

// Write writes what the socket takes of b at once. It returns a nil error
// when it wrote less because the send buffer is full.
func (t *tryWriter) Write(b []byte) (int, error) {
	t.buf, t.n, t.err = b, 0, nil
	if t.raw == nil {
		t.writeFD()
	} else if err := t.raw.Write(t.do); err != nil {
		return 0, err
	}
	n, err := t.n, t.err
	t.buf, t.err = nil, nil
	return n, err
}

// write is the RawConn callback; returning true stops RawConn from waiting.
func (t *tryWriter) write(fd uintptr) bool {
	for t.n < len(t.buf) {
		n, err := syscall.Write(int(fd), t.buf[t.n:])
		if n > 0 {
			t.n += n
		}
		switch err {
		case nil:
			if n <= 0 {
				return true
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			t.err = err
			return true
		}
	}
	return true
}
