//go:build !linux

package resp

// Event loops need epoll; elsewhere every connection is served by its own
// goroutine.

type loops struct{}

func newLoops() *loops { return nil }

func (*loops) close() {}

type loop struct{}

type postOp uint8

const opStop postOp = 1

func (*loop) post(*conn, postOp) bool { return false }

type handoff struct{}

func (c *conn) toLoop() bool { return false }

func (c *conn) looped() end { panic("unreachable") }

func (*tryWriter) writeFD() { panic("unreachable") }
