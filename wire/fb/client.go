package fb

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Client defaults.
const (
	// DefaultConns is how many connections a client opens to a server when
	// Options.Conns is 0. Each is pipelined, so a few carry any number of
	// goroutines; more than one lets the server run batches in parallel.
	DefaultConns = 2
	// DefaultDialTimeout bounds connecting and authenticating when
	// Options.DialTimeout is 0.
	DefaultDialTimeout = 5 * time.Second
	// readSize is a connection's read buffer: a run of pipelined responses
	// arrives in one read.
	readSize = 64 << 10
)

// Options configure a Client. The zero value connects DefaultConns
// connections with no password.
type Options struct {
	// Password, when set, authenticates each connection as it opens (an AUTH
	// operation), as the server's requirepass demands. User names an ACL
	// user; empty is the default user.
	User, Password string
	// Conns is the number of connections to the server; DefaultConns when 0.
	Conns int
	// MaxFrame is the largest response accepted, and the largest request
	// sent, in bytes; DefaultMaxFrame when 0. Keep it at least the server's.
	MaxFrame int
	// DialTimeout bounds opening and authenticating a connection;
	// DefaultDialTimeout when 0.
	DialTimeout time.Duration
	// TLS, when set, makes every connection TLS with this configuration
	// (for a server's TLS port: sluice --fb-tls-port). Its ServerName, when
	// empty, is taken from each address dialled; a client certificate goes
	// in Certificates when the server asks for one (--tls-ca).
	TLS *tls.Config
}

// Client is a FlatBuffers client of a Sluice node or cluster. It is safe
// for concurrent use: goroutines share its connections, each request
// pipelined behind the others, and each goroutine runs its own Batch. A
// broken connection fails the requests in flight on it and is dialled
// again by the next request that picks it.
//
// In a cluster the client sends each key to its owner (see route.go): it
// learns the slot table from the node it dialled, splits a batch by owner,
// and follows MOVED answers, refreshing the table.
type Client struct {
	seed   string
	opts   Options
	routes atomic.Pointer[routes] // the slot table; nil: every key goes to seed
	seedP  atomic.Pointer[pool]   // the pool of seed

	mu      sync.Mutex // guards pools and closed
	pools   map[string]*pool
	closed  bool
	refresh sync.Mutex // one table refresh at a time
}

// ErrClosed is returned by Do on a closed Client.
var ErrClosed = errors.New("fb: client closed")

// Errors of Do for a batch the server could not take.
var (
	ErrTooManyOps    = errors.New("fb: batch has more operations than MaxOps")
	ErrBatchTooLarge = errors.New("fb: batch encodes to more than MaxFrame bytes")
)

// Dial connects to the server at addr with the default Options.
func Dial(addr string) (*Client, error) {
	return DialOptions(addr, Options{})
}

// DialOptions connects to the server at addr. It opens every connection
// (authenticating each when o.Password is set) before it returns, so that a
// wrong address or password is reported here. When the node is a member of
// a cluster, the client also learns the slot table.
func DialOptions(addr string, o Options) (*Client, error) {
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	c := &Client{seed: addr, opts: o, pools: map[string]*pool{}}
	p := c.pool(addr)
	ctx, cancel := context.WithTimeout(context.Background(), o.DialTimeout)
	defer cancel()
	for i := range p.slots {
		if _, err := p.conn(ctx, i); err != nil {
			p.close()
			return nil, err
		}
	}
	return c, nil
}

// Do sends the batch's operations and waits for their results: in one
// request to one node, or, in a cluster, in one request to each node that
// owns some of the batch's keys, all in flight at once. On success the
// results are in the batch (Batch.Result), each with its own error; Do's
// error is for the batch as a whole: the context ended, a connection
// failed, or a server refused the request. An operation answered MOVED
// (its key's slot is another node's) had not run: Do sends it again to the
// node named, up to maxRedirects times, and refreshes the slot table. Do
// may be called again on the same batch, which sends the same operations.
//
// When ctx ends while a request is in flight, Do returns ctx's error at
// once and the response is discarded when it arrives; if the response was
// already arriving, the connection is closed instead (its other requests
// fail), so that a stalled server never holds Do past ctx.
func (c *Client) Do(ctx context.Context, b *Batch) error {
	if len(b.ops) == 0 {
		return nil
	}
	if len(b.ops) > MaxOps {
		return ErrTooManyOps
	}
	b.where, b.subPools = b.where[:0], b.subPools[:0]
	rt := c.routes.Load()
	var err error
	if p := c.target(rt, b); p != nil {
		err = c.doOn(ctx, p, b)
	} else {
		err = c.doSplit(ctx, rt, b)
	}
	if err != nil {
		return err
	}
	return c.redirect(ctx, b)
}

// doOn runs the whole batch on one node.
func (c *Client) doOn(ctx context.Context, p *pool, b *Batch) error {
	cc, err := p.pick(ctx)
	if err != nil {
		return err
	}
	return cc.do(ctx, b, c.opts.MaxFrame)
}

// Close closes the connections; requests in flight fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	pools := make([]*pool, 0, len(c.pools))
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
	return nil
}

// pool returns the pool of addr, made on first use (its connections are
// dialled as they are picked). A closed client's pools are closed.
func (c *Client) pool(addr string) *pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[addr]
	if p == nil {
		p = &pool{addr: addr, opts: &c.opts, c: c, slots: make([]slot, c.opts.Conns)}
		p.closed.Store(c.closed)
		c.pools[addr] = p
	}
	return p
}

// pool is the connections to one address.
type pool struct {
	addr   string
	opts   *Options
	c      *Client // learns the slot table from each new connection
	slots  []slot
	next   atomic.Uint32
	closed atomic.Bool
}

// slot holds one connection, dialled again when it breaks.
type slot struct {
	cc atomic.Pointer[clientConn]
	mu sync.Mutex // one dial at a time
}

// pick returns a working connection, round robin.
func (p *pool) pick(ctx context.Context) (*clientConn, error) {
	i := int(p.next.Add(1) % uint32(len(p.slots)))
	if cc := p.slots[i].cc.Load(); cc != nil && !cc.broken.Load() && cc.alive() {
		return cc, nil
	}
	return p.conn(ctx, i)
}

// idleCheck is how long a connection is left unused before the next pick
// checks that the server has not closed it (idle timeout, CLIENT KILL, a
// node leaving), so that the request goes on a new connection rather than
// failing. No goroutine watches an idle connection; a busy one finds out
// from its reads.
const idleCheck = 100 * time.Millisecond

// alive reports whether the connection may take a request: false when it
// was idle for idleCheck and the server has closed it meanwhile, which
// breaks it.
func (cc *clientConn) alive() bool {
	now := time.Now().UnixNano()
	if last := cc.lastUse.Swap(now); now-last < int64(idleCheck) {
		return true
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	// With no request in flight, nothing may arrive but the server's end.
	if cc.reading || cc.writing || cc.head != len(cc.queue) || cc.err != nil {
		return true
	}
	if err := peerClosed(cc.raw); err != nil {
		cc.mu.Unlock()
		cc.fail(err)
		cc.mu.Lock()
		return false
	}
	return true
}

// conn returns slot i's connection, dialling it if it is missing or broken.
func (p *pool) conn(ctx context.Context, i int) (*clientConn, error) {
	s := &p.slots[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.closed.Load() {
		return nil, ErrClosed
	}
	if cc := s.cc.Load(); cc != nil && !cc.broken.Load() {
		return cc, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.DialTimeout)
	defer cancel()
	cc, err := dialConn(ctx, p.addr, p.opts, p.c.learn)
	if err != nil {
		return nil, err
	}
	s.cc.Store(cc)
	if p.closed.Load() { // Close ran while we dialled
		cc.fail(ErrClosed)
		return nil, ErrClosed
	}
	return cc, nil
}

func (p *pool) close() {
	p.closed.Store(true)
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if cc := s.cc.Load(); cc != nil {
			cc.fail(ErrClosed)
		}
		s.mu.Unlock()
	}
}

// clientConn is one pipelined connection. Callers write their request
// frames in the order they queue their calls, and the responses come back
// in the same order. There is no reader goroutine: a caller waiting for
// its response reads the socket itself when no other caller is reading
// (it leads), and hands each complete response it reads to the call it
// answers, its own or another's, straight into that call's batch. When its
// own has arrived it passes the lead to the next caller waiting, if any.
// A lone caller so reads its response on its own goroutine, with no
// hand-off, as a RESP client does; under load one read brings several
// responses, and their callers are woken as before.
type clientConn struct {
	nc       net.Conn
	raw      net.Conn // the socket: nc, or what nc encrypts with TLS
	maxFrame int
	ids      atomic.Uint64
	broken   atomic.Bool
	lastUse  atomic.Int64 // when a caller last picked the connection (time.Now().UnixNano())

	// The leader's: in[r:w] has been read and not delivered yet; want is
	// the number of bytes the frame at r needs in all, once its length is
	// known. Only the caller holding reading touches them.
	in   []byte
	r, w int
	want int

	mu      sync.Mutex
	queue   []*call // calls waiting for their response, oldest at head
	head    int
	reading bool          // a caller is reading responses: the leader
	out     []byte        // frames waiting for the flusher
	spare   []byte        // a free buffer for out
	writing bool          // a caller or the flusher is writing: frames go to out
	err     error         // why the connection broke
	wake    chan struct{} // signals the flusher; closed when the connection fails

	// A leader whose context can end arms interruption: when the context
	// ends, interrupt sets a read deadline in the past to end its read.
	dl        sync.Mutex
	armed     bool
	interrupt func() // cc.stopRead, made once
}

// dialConn opens a connection, authenticates it, and asks for the slot
// table, which marks it as cluster-aware (the server answers MOVED on it
// rather than forwarding); learn receives the response. A node outside a
// cluster refuses the Slots operation, which is not an error here.
func dialConn(ctx context.Context, addr string, o *Options, learn func(*Batch)) (*clientConn, error) {
	var nc, raw net.Conn
	var err error
	if o.TLS != nil {
		d := tls.Dialer{Config: o.TLS}
		nc, err = d.DialContext(ctx, "tcp", addr) // and the handshake
		if err == nil {
			raw = nc.(*tls.Conn).NetConn()
		}
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
		raw = nc
	}
	if err != nil {
		return nil, err
	}
	cc := &clientConn{nc: nc, raw: raw, maxFrame: o.MaxFrame, wake: make(chan struct{}, 1)}
	cc.interrupt = cc.stopRead
	cc.lastUse.Store(time.Now().UnixNano())
	go cc.flush()
	var b Batch
	auth := -1
	if o.Password != "" {
		auth = b.auth(o.User, o.Password)
	}
	b.slots()
	if err := cc.do(ctx, &b, o.MaxFrame); err != nil {
		cc.fail(err)
		return nil, err
	}
	if auth >= 0 {
		if err := b.Result(auth).Err(); err != nil {
			cc.fail(err)
			return nil, err
		}
	}
	learn(&b)
	return cc, nil
}

// do runs one batch on the connection.
func (cc *clientConn) do(ctx context.Context, b *Batch, maxFrame int) error {
	if err := cc.start(ctx, b, maxFrame); err != nil {
		return err
	}
	return cc.wait(ctx, b)
}

// start sends the batch's request on the connection; wait then waits for
// its response. Between them the batch must not be touched.
func (cc *clientConn) start(ctx context.Context, b *Batch, maxFrame int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cl := b.call
	if cl == nil {
		cl = &call{sig: make(chan struct{}, 1)}
		b.call = cl
	}
	select {
	case <-cl.sig: // a signal left from the call's last run
	default:
	}
	cl.b, cl.id, cl.err = b, cc.ids.Add(1), nil
	cl.state.Store(callWaiting)
	frame := b.encode(cl.id)
	if len(frame)-4 > maxFrame {
		return ErrBatchTooLarge
	}
	b.res, b.refused = b.res[:0], false
	return cc.send(cl, frame)
}

// wait waits for the response to the request start sent: it reads
// responses itself while no other caller does, and otherwise sleeps until
// the leader delivers its response or passes it the lead.
func (cc *clientConn) wait(ctx context.Context, b *Batch) error {
	cl := b.call
	for cl.state.Load() != callDone {
		cc.mu.Lock()
		if !cc.reading && cc.err == nil && cl.state.Load() == callWaiting {
			cc.reading = true
			cc.mu.Unlock()
			if err := cc.lead(ctx, cl); err != nil {
				b.call = nil // abandoned: a later leader drops its response
				return err
			}
			continue
		}
		cc.mu.Unlock()
		select {
		case <-cl.sig:
		case <-ctx.Done():
			if cl.state.CompareAndSwap(callWaiting, callAbandoned) {
				b.call = nil
				cc.mu.Lock()
				cc.passLead()
				cc.mu.Unlock()
				return ctx.Err()
			}
			// Its response is being delivered (a copy from the leader's
			// buffer), or it is done.
			for cl.state.Load() != callDone {
				<-cl.sig
			}
		}
	}
	switch {
	case cl.err != nil:
		return cl.err
	case b.refused:
		err := b.refusal()
		b.res = b.res[:0]
		return err
	}
	return nil
}

// lead reads responses and delivers them until cl's has arrived or the
// connection fails, then passes the lead on; cc.reading is set. It returns
// ctx's error, having abandoned cl, when ctx ends first.
func (cc *clientConn) lead(ctx context.Context, cl *call) (err error) {
	done := ctx.Done()
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
		cc.mu.Lock()
		cc.reading = false
		cc.passLead()
		cc.mu.Unlock()
	}()
	for {
		if derr := cc.deliver(); derr != nil {
			cc.fail(derr)
			return nil
		}
		if cl.state.Load() != callWaiting {
			return nil // done (delivered, or failed with the connection)
		}
		if done != nil {
			if ctx.Err() != nil {
				cl.state.CompareAndSwap(callWaiting, callAbandoned)
				return ctx.Err()
			}
			if stop == nil {
				stop = context.AfterFunc(ctx, cc.interrupt)
			}
			cc.dl.Lock()
			cc.armed = true
			cc.dl.Unlock()
		}
		rerr := cc.fill()
		stopped := rerr != nil && errors.Is(rerr, os.ErrDeadlineExceeded)
		if done != nil || stopped {
			cc.dl.Lock()
			cc.armed = false
			if stopped || ctx.Err() != nil {
				// Undo stopRead's deadline: set for this leader's context,
				// or late, by the context of an earlier leader.
				cc.nc.SetReadDeadline(time.Time{})
			}
			cc.dl.Unlock()
		}
		if rerr != nil {
			if stopped {
				continue // keep what was read; abandon cl at the top if ctx ended
			}
			cc.fail(rerr)
			return nil
		}
	}
}

// stopRead ends the leader's read, when its context ended while it read.
func (cc *clientConn) stopRead() {
	cc.dl.Lock()
	if cc.armed {
		cc.nc.SetReadDeadline(time.Unix(1, 0))
	}
	cc.dl.Unlock()
}

// passLead wakes the oldest call still waiting to take the lead, when no
// one is reading; cc.mu is held.
func (cc *clientConn) passLead() {
	if cc.reading || cc.err != nil {
		return
	}
	for _, q := range cc.queue[cc.head:] {
		if q.state.Load() == callWaiting {
			q.signal()
			return
		}
	}
}

// fill reads what the server has sent, at least one byte, making room for
// the frame in progress: it moves the undelivered bytes to the front and,
// when the buffer is full, grows it to the frame's size.
func (cc *clientConn) fill() error {
	if cc.r == cc.w {
		cc.r, cc.w = 0, 0
		if len(cc.in) > keepBuf {
			cc.in = nil // grown for a large frame, now delivered
		}
	}
	if cc.in == nil {
		cc.in = make([]byte, readSize)
	}
	if cc.r > 0 && cc.r+cc.want > len(cc.in) {
		cc.w = copy(cc.in, cc.in[cc.r:cc.w])
		cc.r = 0
	}
	if cc.w == len(cc.in) {
		grown := make([]byte, max(cc.want, 2*len(cc.in)))
		copy(grown, cc.in[:cc.w])
		cc.in = grown
	}
	n, err := cc.nc.Read(cc.in[cc.w:])
	cc.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// deliver hands each complete response in the buffer to the call it
// answers, in the order of the queue. It returns an error that breaks the
// connection.
func (cc *clientConn) deliver() error {
	for {
		avail := cc.w - cc.r
		if avail < 4 {
			cc.want = 4
			return nil
		}
		n := int(binary.LittleEndian.Uint32(cc.in[cc.r:]))
		if n > cc.maxFrame {
			return errFrameTooLarge
		}
		if avail < 4+n {
			cc.want = 4 + n
			return nil
		}
		frame := cc.in[cc.r+4 : cc.r+4+n]
		cc.r += 4 + n
		cl := cc.pop()
		if cl == nil {
			return unsolicited(frame)
		}
		if !cl.state.CompareAndSwap(callWaiting, callReading) {
			continue // abandoned by Do: drop the response
		}
		if err := cl.b.receive(frame, cl.id); err != nil {
			cl.finish(err)
			return err
		}
		cl.finish(nil)
	}
}

// send queues the call and its frame. On an idle connection the caller
// writes the frame itself, at once, for the lowest latency. While requests
// are in flight, it appends the frame for the connection's flusher, which
// writes whatever has been appended by the time it runs in one system call,
// so that under load the requests of many goroutines share writes.
func (cc *clientConn) send(cl *call, frame []byte) error {
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return err
	}
	idle := !cc.writing && cc.head == len(cc.queue)
	cc.queue = append(cc.queue, cl)
	if !idle {
		cc.out = append(cc.out, frame...)
		if !cc.writing {
			cc.writing = true
			cc.wakeFlusher()
		}
		cc.mu.Unlock()
		return nil
	}
	cc.writing = true
	cc.mu.Unlock()
	_, err := cc.nc.Write(frame)
	cc.mu.Lock()
	if err == nil && cc.err == nil && len(cc.out) > 0 {
		cc.wakeFlusher() // frames appended while we wrote; writing stays set
	} else {
		cc.writing = false
	}
	cc.mu.Unlock()
	if err != nil {
		cc.fail(err) // fails the call too
	}
	return nil
}

// wakeFlusher signals the flusher; cc.mu is held and cc is not broken.
func (cc *clientConn) wakeFlusher() {
	select {
	case cc.wake <- struct{}{}:
	default: // already signalled
	}
}

// flush is the connection's flusher goroutine: woken by send, it writes the
// appended frames until there are none, then clears writing. It ends when
// the connection fails.
//
// Before it writes, it yields once: the goroutines that the last burst of
// responses woke are runnable and about to send their next requests, and
// letting them append first puts several requests in one system call
// (about two per write at 16 goroutines on 2 cores, against one without).
func (cc *clientConn) flush() {
	for range cc.wake {
		runtime.Gosched()
		for {
			cc.mu.Lock()
			if cc.err != nil || len(cc.out) == 0 {
				cc.writing = false
				cc.mu.Unlock()
				break
			}
			buf := cc.out
			cc.out, cc.spare = cc.spare[:0], nil
			cc.mu.Unlock()
			_, err := cc.nc.Write(buf)
			if err != nil {
				cc.fail(err)
				break
			}
			if cap(buf) <= keepBuf {
				cc.mu.Lock()
				cc.spare = buf[:0]
				cc.mu.Unlock()
			}
		}
	}
}

// errUnexpected is the protocol error of a response to no request.
const errUnexpected frameError = "fb: protocol error: a response arrived with no request waiting"

// unsolicited returns the error to break the connection with for a
// response that arrived with no request waiting: the server's refusal when
// it is one (too many clients), else a protocol error.
func unsolicited(frame []byte) error {
	var b Batch
	if err := b.receive(frame, 0); err != nil {
		return err
	}
	if b.refused {
		return b.refusal()
	}
	return errUnexpected
}

// pop takes the oldest queued call, or nil.
func (cc *clientConn) pop() *call {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.head == len(cc.queue) {
		return nil
	}
	cl := cc.queue[cc.head]
	cc.queue[cc.head] = nil
	cc.head++
	switch {
	case cc.head == len(cc.queue):
		cc.queue, cc.head = cc.queue[:0], 0
	case cc.head >= 64 && cc.head*2 >= len(cc.queue):
		// Never empty under load: move the live calls down instead of
		// letting the dead prefix grow.
		n := copy(cc.queue, cc.queue[cc.head:])
		clear(cc.queue[n:])
		cc.queue, cc.head = cc.queue[:n], 0
	}
	return cl
}

// fail breaks the connection: it is closed, and every queued call fails
// with err (ErrClosed for a client being closed).
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	cc.broken.Store(true)
	close(cc.wake)
	queued := cc.queue[cc.head:]
	cc.queue, cc.head = nil, 0
	cc.mu.Unlock()
	cc.nc.Close()
	for _, cl := range queued {
		if cl.state.CompareAndSwap(callWaiting, callReading) {
			cl.finish(err)
		}
	}
	// A leader reading when the connection broke sees the error and
	// leaves; callers waiting on a call finished above wake with it.
}
