package resp

import (
	"crypto/tls"
	"errors"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/internal/protected"
)

// Tuning of a connection's output.
const (
	// flushSize is how much output a batch of pipelined commands collects
	// before it is handed to the socket without waiting for the batch's end.
	flushSize = 64 << 10
	// keepOut is the largest output buffer kept for reuse: enough for a
	// batch flushed at flushSize, so that pipelining does not allocate, and
	// little enough that idle connections do not hoard memory.
	keepOut = 256 << 10
	// throttleMark is the most output (or half the output-buffer limit, if
	// less) that may be pending before the connection stops running a
	// client's commands and waits for it to read.
	throttleMark = 4 << 20
	// stallTimeout is how long the connection waits for a client that makes
	// no progress reading before it stops waiting and lets the output grow
	// to the output-buffer limit, as Redis does, which drops the client.
	stallTimeout = time.Second
	// writeTick bounds each blocking write of the background writer, so that
	// it reports progress on a large reply to a slow reader.
	writeTick = 250 * time.Millisecond
	// lingerTimeout is how long a connection closed by the server after a
	// last reply (QUIT, a protocol error, maxclients) reads and discards
	// what the client still sends. Closing a socket with unread input makes
	// the kernel reset the connection, which can destroy the reply in flight.
	lingerTimeout = 500 * time.Millisecond
	// tlsChunk is how much a TLS connection's background writer hands to
	// one Write: a TLS record. A TLS write must not time out (that breaks
	// the connection for good), so instead of writeTick deadlines it waits,
	// a record at a time, to report progress.
	tlsChunk = 16 << 10
)

// Defences against requests that arrive too slowly or never end. Redis has
// none of the first kind: with its idle timeout off (the default), a client
// that sends half a request and stops, or trickles a byte now and then,
// holds its connection, its maxclients slot and what it sent forever, and
// a trickle defeats the idle timeout even when it is on. Here, once bytes
// have arrived that do not yet make a command, the rest must follow at
// least every requestStall, and at requestRate on average after the first
// requestStall: a request has requestStall, plus a second per requestRate
// bytes received, to complete (the rule, and the rate, of Apache's
// mod_reqtimeout). A client that breaks this is disconnected without a
// reply, as the idle timeout does. Any client that writes whole requests
// (every client library) never comes near it; a value of 512 MiB on a link
// of 500 B/s would have 12 days.
const (
	requestStall = 20 * time.Second
	requestRate  = 500 // bytes per second
	// queryBufLimit bounds the request being read, all its arguments
	// together: a client that sends more without completing it is
	// disconnected, as by Redis's client-query-buffer-limit (the same
	// default, 1 GiB). proto-max-bulk-len bounds one argument only.
	queryBufLimit = 1 << 30
)

// end is why a connection's command loop stopped.
type end int

const (
	endBroken   end = iota // read failed, write failed, or the connection was dropped
	endIdle                // idle timeout: close without a word, as Redis does
	endLast                // QUIT or CLIENT KILL: flush the last reply, then close
	endProtocol            // malformed input: flush the error, then close
	endShutdown            // the server is closing: flush, then close
)

// conn is one client connection. One goroutine (serve) reads requests, runs
// them and appends their replies to the output buffer, w.b; replies go to
// the socket at the end of each batch of pipelined requests.
//
// Out-of-band pushes (Send) come from any goroutine and must land between
// replies, never inside one. While the command goroutine runs a batch
// (busy), it owns w.b and appends without locking; a push is encoded into
// pw.b instead and moved into w.b after the command running now. Between
// batches (not busy), w.b is guarded by mu and a push is appended to it
// directly and written at once, so an idle client gets it promptly.
//
// One writer at a time (writing) owns the bytes in flight. The command
// goroutine writes them itself if the socket takes them at once, and
// otherwise leaves the rest to a background goroutine, so that a client
// that does not read never blocks the goroutine that reads it; such a
// client's output grows instead, and it is dropped at the output-buffer
// limit. A client that reads, but slowly, is throttled before that.
type conn struct {
	s      *Server
	nc     net.Conn   // what requests are read from and replies written to
	raw    net.Conn   // the socket: nc, or what nc encrypts with TLS
	tw     *tryWriter // nil when the socket cannot be written without waiting (TLS)
	rd     *reader
	client *node.Client // set under mu once connected; then read by the command goroutine only

	mu       sync.Mutex
	w        writer // replies; see above for who may touch w.b
	pw       writer // pushes made while busy; guarded by mu
	spare    []byte // a free output buffer; guarded by mu
	busy     bool   // the command goroutine owns w.b; guarded by mu
	writing  bool   // a writer owns the bytes in flight; guarded by mu
	closed   bool   // no more output: the socket is closed or being closed; guarded by mu
	stopping bool   // the server is closing; guarded by mu

	killed    atomic.Bool  // Close was called while busy
	dead      atomic.Bool  // the socket was closed with output lost (closeLocked)
	pushed    atomic.Int64 // len(pw.b), readable without mu
	inflight  atomic.Int64 // bytes handed to a writer and not written yet
	lastWrite atomic.Int64 // Unix ns when the background writer last made progress
	wake      chan struct{}

	// On an event loop (see loop_linux.go): the loop, set under mu when the
	// connection moves to it and nil while its goroutine serves it; and the
	// handoffs from the loop to that goroutine, which waits on hand.
	lp   *loop
	hand chan handoff

	// Owned by the command goroutine, or on an event loop by whichever
	// goroutine runs the connection now.
	onLoop      bool      // an event loop is running it: nothing may wait
	throttled   bool      // batch stopped on a loop for the client to read
	readBy      time.Time // on a loop: when the next read times out; zero for never
	deadline    bool      // a read deadline is set
	unthrottled bool      // the client stalled: stop waiting for it until it catches up
	timer       *time.Timer
	// The bytes that do not make a command yet (see requestStall): they
	// are rd.total-since bytes, the first of which arrived at started, the
	// next must by stalled, and the rest by due (all zero when there are
	// none). seen is rd.total when stalled was set; ran is set when a batch
	// runs a command.
	started time.Time
	stalled time.Time
	due     time.Time
	since   int64
	seen    int64
	ran     bool
}

func newConn(s *Server, raw net.Conn) *conn {
	nc := raw
	if s.tls != nil {
		nc = tls.Server(raw, s.tls.config)
	}
	return &conn{
		s:    s,
		nc:   nc,
		raw:  raw,
		tw:   newTryWriter(nc),
		rd:   newReader(),
		w:    writer{proto: 2},
		pw:   writer{proto: 2},
		wake: make(chan struct{}, 1),
	}
}

// signal wakes a goroutine waiting for the output to move.
func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// serve runs the connection until it ends, then unregisters it.
func (c *conn) serve() {
	client, err := c.s.node.Connect(c, c.raw.RemoteAddr().String(), c.raw.LocalAddr().String())
	if err != nil {
		// A client over maxclients is told so; but a TLS client is dropped
		// unanswered before its handshake, as Redis does: sparing the
		// handshake is the point. Otherwise the node is closing.
		if !errors.Is(err, node.ErrMaxClients) || c.s.tls != nil {
			c.raw.Close()
			return
		}
		c.w.Error(err.Error())
		c.finish(endLast)
		c.hangUp(endLast)
		return
	}
	c.mu.Lock()
	c.client = client
	c.mu.Unlock()
	why, ok := c.admit(client)
	if ok {
		if c.toLoop() {
			why = c.looped()
		} else {
			why = c.loop()
		}
	}
	c.finish(why)
	client.Disconnect()
	c.hangUp(why)
}

// hangUp closes the connection once its output is finished. After a last
// reply, and on shutdown, it lingers first: closing a socket with unread
// input resets it, and the reset destroys replies the client has not read yet.
func (c *conn) hangUp(why end) {
	if why == endLast || why == endProtocol || why == endShutdown {
		c.linger()
	}
	if r, ok := c.nc.(interface{ release() }); ok {
		r.release() // an event loop's socket: closed once its writers are done
		return
	}
	c.nc.Close()
}

// admit completes the TLS handshake, if any, and applies protected mode,
// as Redis does once a connection is accepted. It reports false, with the
// reason, when the connection must end.
func (c *conn) admit(client *node.Client) (end, bool) {
	if tc, ok := c.nc.(*tls.Conn); ok {
		if why, ok := c.handshake(tc); !ok {
			return why, false
		}
	}
	// Redis's condition: the default user has no password.
	if protected.Refuses(c.s.node, c.s.protected, c.raw.RemoteAddr()) {
		c.s.log.Debug("resp: client refused by protected mode", "client", c.raw.RemoteAddr().String())
		c.w.Error(errProtectedMode)
		return endLast, false
	}
	return 0, true
}

// handshake runs the TLS handshake within handshakeTimeout. Server.Close
// interrupts it.
func (c *conn) handshake(tc *tls.Conn) (end, bool) {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return endShutdown, false
	}
	c.raw.SetDeadline(time.Now().Add(handshakeTimeout))
	c.mu.Unlock()
	err := tc.Handshake()
	c.mu.Lock()
	c.raw.SetWriteDeadline(time.Time{})
	if !c.stopping { // stop's deadline must stay
		c.raw.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if err != nil {
		c.s.log.Info("resp: TLS handshake failed", "client", c.raw.RemoteAddr().String(), "err", err)
		return endBroken, false
	}
	return 0, true
}

// loop reads and runs requests until the connection ends: the connection's
// own goroutine serves it (TLS, and where there is no event loop).
func (c *conn) loop() end {
	for {
		if why, ok := c.turn(effective(c.s.node.Limits())); !ok {
			return why
		}
		if !c.armRead(effective(c.s.node.Limits()).IdleTimeout) {
			return endShutdown
		}
		if err := c.rd.fill(c.nc); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return endBroken
			}
			if why, ok := c.timedOut(); !ok {
				return why
			}
		}
	}
}

// turn runs the complete requests in the input buffer and flushes their
// replies. It reports false, with the reason, when the connection must end.
// On an event loop it may instead stop early, with c.throttled set, for the
// client to read its replies (see batch).
func (c *conn) turn(lim node.Limits) (end, bool) {
	c.rd.maxBulk, c.rd.maxArgs = lim.ProtoMaxBulkLen, lim.MaxArgs
	if why, ok := c.batch(lim); !ok {
		return why, false
	}
	if c.throttled {
		return 0, true
	}
	if c.onLoop {
		// An event loop writes the replies of a round's turns once it
		// has read and run all of them (see loop.flushTurns), as Redis
		// does; afterTurn runs then.
		return 0, true
	}
	return c.afterTurn()
}

// afterTurn sends a turn's replies and decides whether the connection
// goes on.
func (c *conn) afterTurn() (end, bool) {
	c.flush(true)
	if c.killed.Load() {
		return endLast, false
	}
	if n := c.rd.partial(); n > c.s.maxQuery {
		c.s.log.Warn("resp: closing client that reached max query buffer length",
			"client", c.raw.RemoteAddr().String(), "bytes", n, "limit", c.s.maxQuery)
		return endBroken, false
	}
	return 0, true
}

// timedOut decides, once the deadline of a read has passed, whether the
// connection ends (the server is closing, the request arrives too slowly,
// or the client is idle) or reads on.
func (c *conn) timedOut() (end, bool) {
	if c.isStopping() {
		return endShutdown, false
	}
	if c.tooSlow(time.Now()) {
		c.s.log.Debug("resp: closing client whose request arrives too slowly",
			"client", c.raw.RemoteAddr().String(), "bytes", c.rd.total-c.since, "since", c.started)
		return endIdle, false
	}
	// Idle, unless a large reply is still being written: Redis counts
	// writes as activity too.
	idle := effective(c.s.node.Limits()).IdleTimeout
	if idle <= 0 || time.Since(time.Unix(0, c.lastWrite.Load())) < idle {
		return 0, true
	}
	return endIdle, false
}

// batch runs every complete request in the input buffer. It reports false,
// with the reason, when the connection must end.
func (c *conn) batch(lim node.Limits) (end, bool) {
	c.mu.Lock()
	c.busy = true
	c.mu.Unlock()
	mark := min(lim.OutputBufferLimit/2, throttleMark)
	for {
		if c.s.conns.Closing() {
			return endShutdown, false
		}
		c.rd.unauth = !c.client.Authenticated()
		args, err := c.rd.next()
		if err != nil {
			c.w.Error(err.Error())
			c.s.log.Debug("protocol error", "client", c.nc.RemoteAddr().String(), "err", err)
			return endProtocol, false
		}
		if args == nil {
			return 0, true
		}
		c.ran = true
		last := c.client.Exec(&c.w, args)
		if c.pushed.Load() > 0 {
			c.mu.Lock()
			c.movePushesLocked()
			c.mu.Unlock()
		}
		if last || c.killed.Load() {
			return endLast, false
		}
		if len(c.w.b) >= flushSize {
			c.flush(false)
		}
		switch p := c.pending(); {
		case p > lim.OutputBufferLimit:
			c.drop(p, lim.OutputBufferLimit)
			return endBroken, false
		case p <= mark:
			c.unthrottled = false
		case !c.unthrottled && c.onLoop:
			// An event loop must not wait: it hands the connection to
			// its goroutine, which waits and runs the rest (serveThrottled).
			c.throttled = true
			return 0, true
		case !c.unthrottled:
			c.awaitDrain(mark)
		}
		if c.dead.Load() {
			return endBroken, false
		}
	}
}

// pending is how many reply bytes wait for the client. Only the command
// goroutine may call it while busy.
func (c *conn) pending() int64 {
	return int64(len(c.w.b)) + c.inflight.Load() + c.pushed.Load()
}

// awaitDrain waits, while busy, for the output to drain to mark. It gives up
// when the client makes no progress reading for stallTimeout, and from then
// on lets the output grow to the limit until the client catches up.
func (c *conn) awaitDrain(mark int64) {
	if c.timer == nil {
		c.timer = time.NewTimer(stallTimeout)
	} else {
		c.timer.Reset(stallTimeout)
	}
	defer c.timer.Stop()
	for {
		c.flush(false) // make sure the output is moving
		progress := c.inflight.Load()
		if c.pending() <= mark || c.killed.Load() || c.dead.Load() || c.isStopping() {
			return
		}
		select {
		case <-c.wake:
			if c.inflight.Load() != progress {
				c.timer.Reset(stallTimeout)
			}
		case <-c.timer.C:
			c.unthrottled = true
			return
		}
	}
}

// movePushesLocked moves the pushes made while busy after the replies.
func (c *conn) movePushesLocked() {
	c.w.b = append(c.w.b, c.pw.b...)
	if cap(c.pw.b) > keepOut {
		c.pw.b = nil
	} else {
		c.pw.b = c.pw.b[:0]
	}
	c.pushed.Store(0)
}

// flush hands the output to the socket: it writes what the socket takes
// now and leaves the rest to a background writer. With idle set, it also
// ends the batch, after which pushes go straight to the output.
func (c *conn) flush(idle bool) {
	if !c.client.AwaitReplicas() {
		// Replicas did not confirm the writes these replies acknowledge:
		// hang up without sending them, so the client sees an error, never
		// an acknowledgement of a write that may be lost.
		c.mu.Lock()
		c.w.b = c.w.b[:0]
		c.closeLocked()
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	if idle {
		c.movePushesLocked()
		c.busy = false
	}
	if c.writing || c.closed || len(c.w.b) == 0 {
		c.mu.Unlock()
		return
	}
	buf := c.takeLocked()
	c.mu.Unlock()
	c.write(buf, 0, true)
}

// takeLocked makes the output the bytes in flight, for the caller to write.
func (c *conn) takeLocked() []byte {
	buf := c.w.b
	c.w.b = c.spare[:0]
	c.spare = nil
	c.writing = true
	c.inflight.Store(int64(len(buf)))
	return buf
}

// write writes buf[off:], then the output appended meanwhile, until there
// is none or the command goroutine owns it. With now set it runs on the
// command goroutine and must not wait: what the socket does not take at
// once goes to a new background writer.
func (c *conn) write(buf []byte, off int, now bool) {
	for {
		var err error
		switch {
		case now && c.tw != nil:
			var n int
			n, err = c.tw.Write(buf[off:])
			off += n
			c.inflight.Add(-int64(n))
			if err == nil && off < len(buf) {
				go c.write(buf, off, false)
				return
			}
		case now:
			go c.write(buf, off, false)
			return
		default:
			err = c.writeAll(buf[off:])
		}
		c.mu.Lock()
		if err != nil {
			c.writing = false
			c.closeLocked()
			c.mu.Unlock()
			return
		}
		if cap(buf) <= keepOut {
			c.spare = buf[:0]
		}
		if c.busy || c.closed || len(c.w.b) == 0 {
			c.writing = false
			c.inflight.Store(0)
			c.mu.Unlock()
			c.signal()
			return
		}
		buf, off = c.takeLocked(), 0
		c.mu.Unlock()
	}
}

// writeAll writes b, waiting for the client to read it. It writes in ticks
// (over TLS, in records: see tlsChunk) so that progress on a large reply is
// reported as it happens.
func (c *conn) writeAll(b []byte) error {
	secure := c.nc != c.raw
	for len(b) > 0 {
		chunk := b
		if secure {
			chunk = b[:min(len(b), tlsChunk)]
		} else {
			c.nc.SetWriteDeadline(time.Now().Add(writeTick))
		}
		n, err := c.nc.Write(chunk)
		b = b[n:]
		if n > 0 {
			c.inflight.Add(-int64(n))
			c.lastWrite.Store(time.Now().UnixNano())
			c.signal()
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	if secure {
		return nil
	}
	// A deadline left in the past would fail the next write without waiting.
	return c.nc.SetWriteDeadline(time.Time{})
}

// finish ends the output: after a last reply it writes what is pending,
// waiting for the client to read it; otherwise it drops it.
func (c *conn) finish(why end) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.movePushesLocked()
	c.busy = false
	if why == endBroken || why == endIdle {
		c.closeLocked()
		return
	}
	for !c.closed && (c.writing || len(c.w.b) > 0) {
		if c.writing {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
			continue
		}
		buf := c.takeLocked()
		c.mu.Unlock()
		c.write(buf, 0, false)
		c.mu.Lock()
	}
	c.closed = true // no more pushes; serve closes the socket
}

// linger half-closes the connection and reads what the client still sends
// for a moment, so that closing it does not reset it before the client has
// read the last reply.
func (c *conn) linger() {
	tc, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	buf := c.rd.buf[:cap(c.rd.buf)]
	for {
		if _, err := c.nc.Read(buf); err != nil {
			return
		}
	}
}

// armRead sets the read deadline before a read: the idle timeout, and the
// deadline of bytes that do not make a command yet (see requestStall),
// whichever comes first. It reports false when the server is closing.
func (c *conn) armRead(idle time.Duration) bool {
	at := c.readDeadline(idle)
	if at.IsZero() && !c.deadline {
		return !c.isStopping()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	c.deadline = !at.IsZero()
	c.nc.SetReadDeadline(at)
	return true
}

// readDeadline is when the next read times out, zero for never: the idle
// timeout, or the deadline of bytes that do not make a command yet,
// whichever comes first. Call it once before each read.
func (c *conn) readDeadline(idle time.Duration) time.Time {
	var at time.Time
	if idle > 0 {
		at = time.Now().Add(idle)
	}
	if c.ran {
		c.ran = false
		c.since = c.rd.total - int64(c.rd.partial())
		c.started, c.stalled, c.due = time.Time{}, time.Time{}, time.Time{}
	}
	if pending := c.rd.total - c.since; pending > 0 {
		if c.seen != c.rd.total { // bytes arrived since the last read
			now := time.Now()
			if c.started.IsZero() {
				c.started = now
			}
			c.stalled, c.seen = now.Add(requestStall), c.rd.total
		}
		allowed := requestStall + time.Duration(float64(pending)/requestRate*float64(time.Second))
		c.due = c.started.Add(allowed)
		if c.stalled.Before(c.due) {
			c.due = c.stalled
		}
		if at.IsZero() || c.due.Before(at) {
			at = c.due
		}
	}
	return at
}

// tooSlow reports, after a read timed out at now, whether it was for a
// request arriving too slowly.
func (c *conn) tooSlow(now time.Time) bool {
	return !c.due.IsZero() && !now.Before(c.due)
}

// stop asks the connection to finish the command it is running, flush and
// close (Server.Close). It interrupts a read in progress.
func (c *conn) stop() {
	c.mu.Lock()
	c.stopping = true
	c.nc.SetReadDeadline(time.Unix(1, 0))
	lp := c.lp
	c.mu.Unlock()
	c.signal()
	if lp != nil {
		lp.post(c, opStop) // its loop ends it unless it is running elsewhere
	}
}

func (c *conn) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// closeLocked closes the socket now; pending output is lost.
func (c *conn) closeLocked() {
	if !c.closed {
		c.closed = true
		c.dead.Store(true)
		c.raw.Close() // not nc: a TLS close would first wait to send an alert
	}
	c.signal()
}

// drop disconnects a client whose pending output is over the limit.
func (c *conn) drop(pending, limit int64) {
	c.s.log.Warn("client closed for overcoming of output buffer limits",
		"client", c.nc.RemoteAddr().String(), "pending", pending, "limit", limit)
	c.mu.Lock()
	c.closeLocked()
	c.mu.Unlock()
}

// Send writes an out-of-band message after every reply produced so far and
// never inside one. It does not wait for the client: it starts the write in
// the background, and disconnects the client instead when its pending output
// goes over the output-buffer limit. fn runs at once, on the caller's
// goroutine, with the connection's output locked: it must only write, and
// must not call Send.
func (c *conn) Send(fn func(w node.Writer)) {
	limit := effective(c.s.node.Limits()).OutputBufferLimit
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	var pending int64
	if c.busy {
		c.pw.proto = atomic.LoadInt32(&c.w.proto)
		fn(&c.pw)
		c.pushed.Store(int64(len(c.pw.b)))
		pending = int64(len(c.pw.b)) + c.inflight.Load()
	} else {
		fn(&c.w)
		pending = int64(len(c.w.b)) + c.inflight.Load()
		if pending <= limit && !c.writing {
			buf := c.takeLocked()
			go c.write(buf, 0, false)
		}
	}
	c.mu.Unlock()
	if pending > limit {
		c.drop(pending, limit)
	}
}

// Close disconnects the client (CLIENT KILL). A client running a command
// finishes it, and its reply is flushed, before it is closed.
func (c *conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy {
		c.killed.Store(true)
		c.signal()
		return nil
	}
	c.closeLocked()
	return nil
}

// effective fills in what a limit of zero or less means here: the node's
// defaults for the request limits, and no limit on output (as a Redis
// client-output-buffer-limit of 0 means).
func effective(l node.Limits) node.Limits {
	if l.ProtoMaxBulkLen <= 0 {
		l.ProtoMaxBulkLen = 512 << 20
	}
	if l.MaxArgs <= 0 {
		l.MaxArgs = 1 << 20
	}
	if l.OutputBufferLimit <= 0 {
		l.OutputBufferLimit = math.MaxInt64
	}
	return l
}
