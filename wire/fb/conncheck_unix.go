//go:build unix

package fb

import (
	"io"
	"net"
	"syscall"
)

// peerClosed reports whether the peer of an idle connection has closed it
// (or reset it): a non-blocking peek at the socket finds its end. Data
// waiting is not a closed connection; the next response read deals with it.
func peerClosed(raw net.Conn) error {
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var closed error
	err = rc.Read(func(fd uintptr) bool {
		var buf [1]byte
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n == 0 && err == nil:
			closed = io.EOF
		case err != nil && err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR:
			closed = err
		}
		return true
	})
	if err != nil {
		return err
	}
	return closed
}
