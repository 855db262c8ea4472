package resp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Plaintext TCP connections are served by event loops, as Redis serves
// every client: a few goroutines (one per P), each waiting in epoll_wait on
// many non-blocking sockets, reading what a ready client sent, running its
// commands and writing their replies before going on to the next. Serving
// each connection on its own goroutine over Go's netpoller costs, per
// unpipelined request, a read that finds nothing (the client is waiting
// for the reply just written), the goroutine parking, the scheduler's
// search for work, and its wake-up when the next request comes: about a
// third more CPU per request than Redis. A loop reads each request once,
// when epoll says it is there, and runs clients in turn, so that one that
// keeps sending cannot starve the others until the runtime preempts it.
//
// The connection's goroutine stays, waiting, and the loop hands the
// connection to it for anything that must wait: for a client that reads
// its replies too slowly to catch up (awaitDrain), and for the end of the
// connection (finish, linger). Writes the socket does not take at once go
// to the background writer, as before, which waits on the socket with
// poll(2). Out-of-band pushes, CLIENT KILL and the replication barrier work
// as on a connection's own goroutine: the loop runs the same turn.
//
// A connection's socket leaves Go's netpoller: its descriptor is
// duplicated and the net.Conn closed, so that the runtime's own epoll is
// not woken for it too. Reads and writes then use the descriptor directly
// (fdConn).

// loops are a server's event loops, started with the first connection.
type loops struct {
	once sync.Once
	all  []*loop // nil when epoll is unavailable
	next atomic.Uint32
	stop chan struct{} // closed to stop watch
	wg   sync.WaitGroup

	// The watchdog sleeps while no turn runs (asleep set), so that an idle
	// server does not wake every millisecond; a loop starting a turn
	// wakes it (see turnStarted).
	asleep atomic.Bool
	wake   chan struct{} // buffered: a wake-up never blocks a loop
}

func newLoops() *loops { return &loops{wake: make(chan struct{}, 1)} }

// pick returns the loop for a new connection, nil when there is none.
func (ls *loops) pick(s *Server) *loop {
	ls.once.Do(func() {
		n := s.nloops
		for range n {
			l, err := newLoop(s)
			if err != nil {
				s.log.Warn("resp: no event loop, serving each connection on a goroutine", "err", err)
				break
			}
			ls.all = append(ls.all, l)
		}
		if len(ls.all) < n {
			for _, l := range ls.all {
				l.closeFDs()
			}
			ls.all = nil
			return
		}
		for _, l := range ls.all {
			ls.wg.Go(func() { l.run(0) })
		}
		ls.stop = make(chan struct{})
		ls.wg.Go(func() { ls.watch(ls.stop) })
	})
	if len(ls.all) == 0 {
		return nil
	}
	return ls.all[int(ls.next.Add(1))%len(ls.all)]
}

// close stops the loops, once the server's connections are gone (or
// killed), and waits for them.
func (ls *loops) close() {
	ls.once.Do(func() {}) // no loop may start after this
	for _, l := range ls.all {
		l.post(nil, opQuit)
	}
	if ls.stop != nil {
		close(ls.stop)
	}
	ls.wg.Wait()
}

// postOp is work handed to a loop from another goroutine.
type postOp uint8

const (
	opAdd  postOp = iota // serve the connection (new, or back from its goroutine)
	opStop               // the server is closing: end the connection
	opQuit               // end every connection and stop
)

type posted struct {
	c  *conn
	op postOp
}

// handoff is what a loop hands a connection's goroutine: the end of the
// connection, or a turn stopped by throttling, for it to finish.
type handoff struct {
	why   end
	ended bool
}

// loop is one event loop: an epoll instance and the goroutine waiting on it.
//
// The goroutine does not block in epoll_wait, which would hold its P (with
// a loop per P, all of them) until the runtime's monitor takes it back,
// stalling every other goroutine for milliseconds. The epoll descriptor is
// itself registered with Go's netpoller instead: the loop asks epoll_wait
// for events without waiting, and when there are none it parks, as a
// goroutine reading a socket does, until the netpoller reports the epoll
// instance readable.
type loop struct {
	s    *Server
	epfd int
	ep   *os.File        // epfd, registered with the netpoller
	rc   syscall.RawConn // ep's
	wait func(uintptr) bool
	got  int       // events found by wait
	set  time.Time // ep's read deadline
	evfd int       // an eventfd: posted work is waiting

	mu       sync.Mutex
	pending  []posted // guarded by mu
	spare    []posted // guarded by mu
	quitting bool     // opQuit is posted; guarded by mu

	// The loop's runner: the goroutine waiting on ep and running turns,
	// which holds own except while it waits or runs a turn, and is
	// replaced when a turn takes too long (see watch).
	own    sync.Mutex
	gen    uint64       // the runner's generation; guarded by own
	cur    *conn        // the connection whose turn runs; guarded by own
	turnAt atomic.Int64 // when that turn started, Unix ns; zero between turns

	// Guarded by own.
	conns  []*conn   // by descriptor
	unsent []*conn   // connections whose turn's replies wait for flushTurns
	n      int       // connections served
	wakeAt time.Time // no read deadline falls before it; zero for none
	events [128]syscall.EpollEvent
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("eventfd2", e)
	}
	l := &loop{s: s, epfd: epfd, evfd: int(r)}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.evfd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		l.closeFDs()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		l.closeFDs()
		return nil, os.NewSyscallError("fcntl", err)
	}
	l.ep = os.NewFile(uintptr(epfd), "epoll")
	rc, err := l.ep.SyscallConn()
	if err == nil {
		// Only a file the netpoller took has a read deadline.
		err = l.ep.SetReadDeadline(time.Time{})
	}
	if err != nil {
		l.closeFDs()
		return nil, err
	}
	l.rc = rc
	l.wait = func(uintptr) bool {
		// Without waiting, so a raw system call: see rawRead.
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd),
			uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
		if e != 0 {
			n = 0
		}
		l.got = int(n)
		return n > 0
	}
	return l, nil
}

func (l *loop) closeFDs() {
	l.mu.Lock()
	defer l.mu.Unlock()
	syscall.Close(l.evfd)
	if l.ep != nil {
		l.ep.Close()
	} else {
		syscall.Close(l.epfd)
	}
}

// post hands the loop work from another goroutine and wakes it. It
// reports false when the loop has been told to stop.
func (l *loop) post(c *conn, op postOp) bool {
	l.mu.Lock()
	if l.quitting {
		l.mu.Unlock()
		return false
	}
	l.quitting = op == opQuit
	if len(l.pending) == 0 {
		// Under mu: the loop closes evfd once it has taken opQuit.
		one := uint64(1)
		syscall.Write(l.evfd, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
	l.pending = append(l.pending, posted{c, op})
	l.mu.Unlock()
	return true
}

// run is the loop's goroutine: its runner of generation gen, which returns
// when it is replaced (see watch) or the loop stops.
func (l *loop) run(gen uint64) {
	l.own.Lock()
	for {
		l.flushTurns()
		if !l.wakeAt.Equal(l.set) {
			l.ep.SetReadDeadline(l.wakeAt)
			l.set = l.wakeAt
		}
		l.got = 0
		l.own.Unlock()
		if err := l.rc.Read(l.wait); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			l.s.log.Error("resp: event loop failed", "err", err)
			time.Sleep(time.Millisecond)
		}
		l.own.Lock()
		for i := range l.got {
			fd := int(l.events[i].Fd)
			if fd == l.evfd {
				l.flushTurns() // before a quit ends the connections
				if l.takePosted() {
					l.own.Unlock()
					l.closeFDs()
					return
				}
				continue
			}
			if fd < len(l.conns) && l.conns[fd] != nil {
				if !l.serve(l.conns[fd], true, gen) {
					return
				}
			}
		}
		if !l.wakeAt.IsZero() && !time.Now().Before(l.wakeAt) {
			if !l.sweep(gen) {
				return
			}
		}
	}
}

// flushTurns sends the replies of the turns run since it last ran: a loop
// reads and runs every ready client's requests, then writes all their
// replies, as Redis's event loop does, so that the clients served first in
// a round do not have their next requests read before the last ones are
// answered. Called holding own.
func (l *loop) flushTurns() {
	for i, c := range l.unsent {
		l.unsent[i] = nil
		if !l.owns(c) {
			continue // ended meanwhile: its goroutine sends what it owes
		}
		if why, ok := c.afterTurn(); !ok {
			l.end(c, why)
		}
	}
	l.unsent = l.unsent[:0]
}

// A turn may wait: a command forwarded to the slot's owner, or the
// replication barrier (AwaitReplicas), waits for another node. While it
// waits, the loop's other connections would wait too. So the loops are
// watched, as the runtime's monitor watches goroutines in system calls: a
// runner whose turn has lasted stuckTurn leaves the loop to a new runner,
// finishes the turn as the connection's own goroutine would, and gives the
// connection back to the loop.
const (
	stuckTurn  = time.Millisecond
	watchEvery = time.Millisecond
)

// turnHook, when set by a test, runs before each turn on a loop.
var turnHook func(*conn)

// watch replaces the runners stuck in a turn until stop is closed.
func (ls *loops) watch(stop <-chan struct{}) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !ls.turning() {
			// Sleep until a turn starts. asleep is published before
			// turning is checked again, and a loop stores turnAt before
			// it reads asleep, so one of the two sees the other.
			t.Stop()
			ls.asleep.Store(true)
			if !ls.turning() {
				select {
				case <-stop:
					return
				case <-ls.wake:
				}
			}
			ls.asleep.Store(false)
			t.Reset(watchEvery)
			continue
		}
		now := time.Now().UnixNano()
		for _, l := range ls.all {
			at := l.turnAt.Load()
			if at == 0 || now-at < int64(stuckTurn) {
				continue
			}
			l.own.Lock()
			if l.turnAt.Load() == at {
				l.turnAt.Store(0)
				l.remove(l.cur) // its runner gives it back
				l.gen++
				gen := l.gen
				ls.wg.Go(func() { l.run(gen) })
			}
			l.own.Unlock()
		}
	}
}

// turning reports whether a turn runs on any loop.
func (ls *loops) turning() bool {
	for _, l := range ls.all {
		if l.turnAt.Load() != 0 {
			return true
		}
	}
	return false
}

// turnStarted wakes the watchdog if it sleeps; a loop calls it once it
// has stored turnAt.
func (ls *loops) turnStarted() {
	if ls.asleep.Load() && ls.asleep.CompareAndSwap(true, false) {
		select {
		case ls.wake <- struct{}{}:
		default:
		}
	}
}

// takePosted does the posted work; it reports true when the loop must stop.
func (l *loop) takePosted() bool {
	var b [8]byte
	syscall.Read(l.evfd, b[:])
	l.mu.Lock()
	work := l.pending
	l.pending, l.spare = l.spare[:0], nil
	l.mu.Unlock()
	quit := false
	for _, p := range work {
		switch p.op {
		case opAdd:
			l.add(p.c)
		case opStop:
			if c := p.c; l.owns(c) {
				l.end(c, endShutdown)
			}
		case opQuit:
			quit = true
		}
	}
	clear(work)
	l.mu.Lock()
	l.spare = work[:0]
	l.mu.Unlock()
	if quit {
		for _, c := range l.conns {
			if c != nil {
				l.end(c, endBroken)
			}
		}
	}
	return quit
}

func (l *loop) owns(c *conn) bool {
	fd := c.nc.(*fdConn).fd
	return fd < len(l.conns) && l.conns[fd] == c
}

// add starts serving c: a new connection, or one back from its goroutine.
func (l *loop) add(c *conn) {
	fd := c.nc.(*fdConn).fd
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.s.log.Error("resp: epoll_ctl failed", "client", c.raw.RemoteAddr().String(), "err", err)
		c.hand <- handoff{why: endBroken, ended: true}
		return
	}
	if fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, fd+1-len(l.conns))...)
	}
	l.conns[fd] = c
	l.n++
	l.track(c)
	if c.isStopping() {
		l.end(c, endShutdown)
	}
}

// remove stops serving c, whose goroutine takes it over.
func (l *loop) remove(c *conn) {
	fd := c.nc.(*fdConn).fd
	syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	l.conns[fd] = nil
	l.n--
}

// end ends c: its goroutine writes what it still owes and closes it.
func (l *loop) end(c *conn, why end) {
	l.remove(c)
	c.hand <- handoff{why: why, ended: true}
}

// track makes sure the loop wakes for c's read deadline.
func (l *loop) track(c *conn) {
	if at := c.readBy; !at.IsZero() && (l.wakeAt.IsZero() || at.Before(l.wakeAt)) {
		l.wakeAt = at
	}
}

// serve runs a turn of c: after reading what it sent when readable is
// set, and otherwise because its read deadline has passed. The runner of
// generation gen calls it holding own; it returns false, without own, when
// the runner was replaced during the turn (see watch).
func (l *loop) serve(c *conn, readable bool, gen uint64) bool {
	c.onLoop = true
	if readable {
		if err := c.rd.fill(&c.nc.(*fdConn).now); err != nil {
			c.onLoop = false
			if err != syscall.EAGAIN {
				l.end(c, endBroken)
			}
			return true
		}
	} else if why, ok := c.timedOut(); !ok {
		c.onLoop = false
		l.end(c, why)
		return true
	}
	lim := effective(c.s.node.Limits())
	l.cur = c
	l.turnAt.Store(time.Now().UnixNano())
	l.s.loops.turnStarted()
	l.own.Unlock()
	if turnHook != nil {
		turnHook(c)
	}
	why, ok := c.turn(lim)
	l.own.Lock()
	c.onLoop = false
	if l.gen != gen {
		// Replaced: c is off the loop, and this goroutine is now c's.
		l.own.Unlock()
		switch {
		case !ok:
			c.hand <- handoff{why: why, ended: true}
		case c.throttled:
			c.hand <- handoff{}
		default:
			if why, ok := c.afterTurn(); !ok {
				c.hand <- handoff{why: why, ended: true}
				break
			}
			c.readBy = c.readDeadline(lim.IdleTimeout)
			if !l.post(c, opAdd) {
				c.hand <- handoff{why: endShutdown, ended: true}
			}
		}
		return false
	}
	l.turnAt.Store(0)
	switch {
	case !ok:
		l.end(c, why)
	case c.throttled:
		l.remove(c)
		c.hand <- handoff{}
	default:
		c.readBy = c.readDeadline(lim.IdleTimeout)
		l.track(c)
		l.unsent = append(l.unsent, c)
	}
	return true
}

// sweep serves the connections whose read deadline has passed and sets
// when to wake next. It returns false, as serve does, when the runner was
// replaced.
func (l *loop) sweep(gen uint64) bool {
	now := time.Now()
	l.wakeAt = time.Time{}
	for i := 0; i < len(l.conns); i++ {
		c := l.conns[i]
		if c == nil || c.readBy.IsZero() {
			continue
		}
		if now.Before(c.readBy) {
			l.track(c)
			continue
		}
		c.readBy = time.Time{}
		if !l.serve(c, false, gen) {
			return false
		}
	}
	return true
}

// toLoop moves a plaintext TCP connection to an event loop; it reports
// false, and changes nothing, when the connection stays on its goroutine.
func (c *conn) toLoop() bool {
	tc, ok := c.raw.(*net.TCPConn)
	if !ok || c.nc != c.raw || c.s.loops == nil || c.s.node.Replicating() {
		// A node that replicates makes replies wait for its peers: such a
		// connection keeps its goroutine, so its wait holds up nobody.
		return false
	}
	l := c.s.loops.pick(c.s)
	if l == nil {
		return false
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	err = sc.Control(func(s uintptr) {
		var e error
		fd, e = dupCloexec(int(s))
		if e != nil {
			fd = -1
		}
	})
	if err != nil || fd < 0 {
		return false
	}
	fc := &fdConn{fd: fd, now: nowReader{fd}, laddr: tc.LocalAddr(), raddr: tc.RemoteAddr()}
	c.mu.Lock()
	if c.closed || c.stopping || c.writing {
		c.mu.Unlock()
		syscall.Close(fd)
		return false
	}
	c.nc, c.raw, c.tw = fc, fc, &tryWriter{fd: fd}
	c.lp = l
	c.hand = make(chan handoff, 1)
	c.mu.Unlock()
	tc.Close() // leaves the netpoller; the socket stays open through fd
	return true
}

// looped has the connection's loop serve it, does what the loop hands
// over, and returns why the connection ended.
func (c *conn) looped() end {
	for {
		if !c.lp.post(c, opAdd) {
			return endShutdown // the loop has stopped
		}
		h := <-c.hand
		if h.ended {
			return h.why
		}
		if why, ok := c.serveThrottled(); !ok {
			return why
		}
	}
}

// serveThrottled finishes a turn that its loop stopped for the client to
// read (see batch): it waits for the output to drain as the connection's
// own goroutine would, runs the rest of the input, and arms the next read.
func (c *conn) serveThrottled() (end, bool) {
	c.throttled = false
	lim := effective(c.s.node.Limits())
	c.awaitDrain(min(lim.OutputBufferLimit/2, throttleMark))
	if c.dead.Load() {
		return endBroken, false
	}
	if why, ok := c.turn(lim); !ok {
		return why, false
	}
	c.readBy = c.readDeadline(lim.IdleTimeout)
	return 0, true
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// fdConn is a socket served by an event loop, as a net.Conn for the code
// that waits: the background writer, and linger. Its loop reads it
// directly (Read with a zero read deadline never waits). Close shuts the
// socket down, which wakes anything waiting on it, but keeps the
// descriptor, which the loop may still be using; release closes it once
// the connection is over and no call is using it.
type fdConn struct {
	fd           int
	now          nowReader // what the loop reads with
	laddr, raddr net.Addr
	rdl, wdl     atomic.Int64 // deadlines, Unix ns; zero for none

	mu       sync.Mutex
	ops      int  // blocking calls in progress; guarded by mu
	released bool // guarded by mu
}

// nowReader reads what the socket holds, without waiting: with nothing
// there, it returns syscall.EAGAIN.
type nowReader struct{ fd int }

func (r *nowReader) Read(b []byte) (int, error) {
	for {
		n, err := rawRead(r.fd, b)
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err != syscall.EINTR:
			return 0, err
		}
	}
}

// rawRead and rawWrite are read(2) and write(2) on a non-blocking socket,
// as raw system calls: the runtime does not mark the goroutine as in a
// system call, which it would otherwise hand its P away from (waking
// another thread) whenever the call takes longer than the monitor's tick,
// as a write to a loopback socket, which runs the receiver's side of TCP
// too, often does. Neither call waits, so the runtime loses nothing.
func rawRead(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Read reads what is there, waiting for it until the read deadline.
func (f *fdConn) Read(b []byte) (int, error) {
	if !f.acquire() {
		return 0, net.ErrClosed
	}
	defer f.done()
	for {
		n, err := f.now.Read(b)
		if err != syscall.EAGAIN {
			return n, err
		}
		if err := f.wait(pollIn, f.rdl.Load()); err != nil {
			return 0, err
		}
	}
}

// Write writes all of b, waiting for room until the write deadline.
func (f *fdConn) Write(b []byte) (int, error) {
	if !f.acquire() {
		return 0, net.ErrClosed
	}
	defer f.done()
	written := 0
	for written < len(b) {
		n, err := syscall.Write(f.fd, b[written:])
		if n > 0 {
			written += n
			continue
		}
		switch err {
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := f.wait(pollOut, f.wdl.Load()); err != nil {
				return written, err
			}
		case nil:
			return written, io.ErrShortWrite
		default:
			return written, &net.OpError{Op: "write", Net: "tcp", Source: f.laddr, Addr: f.raddr, Err: os.NewSyscallError("write", err)}
		}
	}
	return written, nil
}

const (
	pollIn  = 0x1
	pollOut = 0x4
)

// wait waits until the socket is ready for events (or has failed, or was
// shut down), or until the deadline (Unix ns, zero for none).
func (f *fdConn) wait(events int16, deadline int64) error {
	for {
		var ts *syscall.Timespec
		if deadline != 0 {
			d := deadline - time.Now().UnixNano()
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			t := syscall.NsecToTimespec(d)
			ts = &t
		}
		pfd := struct {
			fd             int32
			events, revent int16
		}{int32(f.fd), events, 0}
		_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
		switch {
		case e == syscall.EINTR:
		case e != 0:
			return os.NewSyscallError("ppoll", e)
		case pfd.revent != 0:
			return nil
		}
	}
}

func (f *fdConn) acquire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return false
	}
	f.ops++
	return true
}

func (f *fdConn) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ops--; f.ops == 0 && f.released {
		syscall.Close(f.fd)
	}
}

// Close shuts the socket down; the descriptor stays until release.
func (f *fdConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.released {
		syscall.Shutdown(f.fd, syscall.SHUT_RDWR)
	}
	return nil
}

// CloseWrite shuts down the sending side.
func (f *fdConn) CloseWrite() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return net.ErrClosed
	}
	return syscall.Shutdown(f.fd, syscall.SHUT_WR)
}

// release closes the socket: at once if nothing is using it, otherwise it
// shuts it down, which makes those calls return, and the last one closes it.
func (f *fdConn) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return
	}
	f.released = true
	if f.ops == 0 {
		syscall.Close(f.fd)
		return
	}
	syscall.Shutdown(f.fd, syscall.SHUT_RDWR)
}

func (f *fdConn) LocalAddr() net.Addr  { return f.laddr }
func (f *fdConn) RemoteAddr() net.Addr { return f.raddr }

func (f *fdConn) SetDeadline(t time.Time) error {
	f.SetReadDeadline(t)
	return f.SetWriteDeadline(t)
}

func (f *fdConn) SetReadDeadline(t time.Time) error {
	f.rdl.Store(unixNano(t))
	return nil
}

func (f *fdConn) SetWriteDeadline(t time.Time) error {
	f.wdl.Store(unixNano(t))
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if n := t.UnixNano(); n > 0 {
		return n
	}
	return 1
}

// writeFD is write for an event loop's socket, with rawWrite.
func (t *tryWriter) writeFD() {
	for t.n < len(t.buf) {
		n, err := rawWrite(t.fd, t.buf[t.n:])
		if n > 0 {
			t.n += n
		}
		switch err {
		case nil:
			if n <= 0 {
				return
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return
		default:
			t.err = err
			return
		}
	}
}
