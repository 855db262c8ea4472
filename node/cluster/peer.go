package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// The peer protocol, after the connection's protoPeer byte, is frames in
// both directions:
//
//	type:1 | id:4 big-endian | length:4 big-endian | payload:length
//
// A request's id comes back on its reply, so a connection carries many
// requests in flight; the server runs them one at a time in the order they
// arrived (a client's pipeline stays in order) and flushes its replies when
// it has read everything that arrived. The type byte leaves room for more
// conversations on the same connections: replication and hand-off (issue 8)
// take types from 16 up. A server answers a type it does not know with
// msgFail, so a newer node talking to an older one gets an error, not a
// dropped connection.
const (
	// msgCommand asks the peer to run a command: uvarint argc, then argc
	// × (uvarint length, bytes).
	msgCommand byte = 1
	// msgReply answers with the recorded reply (see reply.go).
	msgReply byte = 2
	// msgNotOwner answers that the peer does not own the slot; empty.
	msgNotOwner byte = 3
	// msgFail answers that the request could not be served; the payload
	// says why.
	msgFail byte = 4
	// msgInRaft asks the raft leader whether the node named by the
	// payload is still in raft's configuration: a leaving node cannot tell
	// by itself once it is removed, since nobody replicates to it any more.
	// Answered with msgReply holding an Int, 1 or 0, or msgFail when the
	// receiver does not lead.
	msgInRaft byte = 5
	// msgReplicate carries a payload for Handler.ServeReplicate: the
	// node's replication and hand-off records. Answered with an empty
	// msgReply once applied, or msgFail.
	msgReplicate byte = 16
	// msgHandedOff reports to the raft leader that a member finished its
	// part of a plan: uvarint plan, then the member's ID. Answered with an
	// empty msgReply, or msgFail when the receiver does not lead.
	msgHandedOff byte = 17
)

const (
	frameHeader = 9
	// maxFrame bounds a payload: a command's arguments or a reply. Redis's
	// proto-max-bulk-len is 512 MiB; twice that leaves room for the rest.
	maxFrame = 1 << 30
	// bufSize is each connection's read and write buffer.
	bufSize = 64 << 10
	// keepBuf is the largest buffer kept for reuse once a big frame passed.
	keepBuf = 1 << 20
)

func appendHeader(b []byte, typ byte, id uint32, n int) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func commandSize(args [][]byte) int {
	n := uvarintLen(uint64(len(args)))
	for _, a := range args {
		n += uvarintLen(uint64(len(a))) + len(a)
	}
	return n
}

func appendCommand(b []byte, args [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(args)))
	for _, a := range args {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

// decodeCommand splits a msgCommand payload into args (slices of payload),
// reusing args' array.
func decodeCommand(p []byte, args [][]byte) ([][]byte, bool) {
	argc, k := binary.Uvarint(p)
	if k <= 0 || argc == 0 || argc > uint64(len(p)) {
		return args, false
	}
	p = p[k:]
	args = args[:0]
	for range argc {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return args, false
		}
		args = append(args, p[k:k+int(n):k+int(n)])
		p = p[k+int(n):]
	}
	return args, len(p) == 0
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// servePeer serves one peer-protocol connection until it fails or the
// cluster closes.
func (c *Cluster) servePeer(conn net.Conn) {
	defer c.untrack(conn)
	br := bufio.NewReaderSize(conn, bufSize)
	bw := bufio.NewWriterSize(conn, bufSize)
	var (
		hdr     [frameHeader]byte
		payload []byte
		args    [][]byte
		rec     recorder
		out     []byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		typ, id, n := hdr[0], binary.BigEndian.Uint32(hdr[1:]), binary.BigEndian.Uint32(hdr[5:])
		if n > maxFrame {
			c.log.Warn("peer frame too large, closing", "from", conn.RemoteAddr().String(), "bytes", n)
			return
		}
		if cap(payload) < int(n) || cap(payload) > keepBuf {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		out = out[:0]
		switch typ {
		case msgCommand:
			var ok bool
			if args, ok = decodeCommand(payload, args); !ok {
				out = appendFail(out, id, "malformed command frame")
				break
			}
			rec.reset()
			switch owned, err := c.serve(args, &rec); {
			case err != nil:
				out = appendFail(out, id, err.Error())
			case !owned:
				out = appendHeader(out, msgNotOwner, id, 0)
			default:
				out = appendHeader(out, msgReply, id, len(rec.buf))
				out = append(out, rec.buf...)
			}
			if cap(rec.buf) > keepBuf {
				rec.buf = nil
			}
		case msgInRaft:
			out = c.answerInRaft(out, id, string(payload), &rec)
		case msgReplicate:
			if err := c.serveReplicate(payload); err != nil {
				out = appendFail(out, id, err.Error())
			} else {
				out = appendHeader(out, msgReply, id, 0)
			}
		case msgHandedOff:
			out = c.answerHandedOff(out, id, payload)
		default:
			out = appendFail(out, id, fmt.Sprintf("unknown message type %d", typ))
		}
		if _, err := bw.Write(out); err != nil {
			return
		}
		if cap(out) > keepBuf {
			out = nil
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

func appendFail(b []byte, id uint32, msg string) []byte {
	b = appendHeader(b, msgFail, id, len(msg))
	return append(b, msg...)
}

// serve runs one forwarded command through the handler. A panicking handler
// fails this request, not the process.
func (c *Cluster) serve(args [][]byte, w ReplyWriter) (owned bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("peer handler panicked", "command", string(args[0]), "panic", p)
			err = errors.New("ERR internal error serving a forwarded command")
		}
	}()
	if c.handler == nil {
		return false, errors.New("ERR node has no handler")
	}
	return c.handler.ServePeer(args, w)
}

// call is one request in flight on a peerConn.
type call struct {
	id      uint32
	done    chan struct{} // receives once: typ and payload, or err, are set
	typ     byte
	payload []byte
	err     error
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// peerConn is one pipelined connection to a peer: callers append frames to
// wbuf, a writer goroutine sends what has gathered in one write, and a
// reader goroutine hands each reply to the call with its id.
type peerConn struct {
	conn    net.Conn
	mu      sync.Mutex
	wbuf    []byte
	pending map[uint32]*call
	nextID  uint32
	err     error // set once the connection is lost
	flush   chan struct{}
	done    chan struct{}
}

func newPeerConn(conn net.Conn) *peerConn {
	pc := &peerConn{
		conn:    conn,
		pending: make(map[uint32]*call),
		flush:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go pc.writeLoop()
	go pc.readLoop()
	return pc
}

func (pc *peerConn) broken() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.err != nil
}

// send queues a request: a frame of type typ whose size-byte payload
// appendPayload appends. The answer arrives on the returned call.
func (pc *peerConn) send(typ byte, size int, appendPayload func([]byte) []byte) (*call, error) {
	if size > maxFrame {
		return nil, fmt.Errorf("cluster: request of %d bytes is too large to send", size)
	}
	cl := calls.Get().(*call)
	pc.mu.Lock()
	if pc.err != nil {
		err := pc.err
		pc.mu.Unlock()
		calls.Put(cl)
		return nil, err
	}
	pc.nextID++
	cl.id = pc.nextID
	pc.pending[cl.id] = cl
	pc.wbuf = appendPayload(appendHeader(pc.wbuf, typ, cl.id, size))
	pc.mu.Unlock()
	select {
	case pc.flush <- struct{}{}:
	default:
	}
	return cl, nil
}

// abandon forgets a call whose caller gave up. It reports false when the
// reply is already on its way: the caller must then receive it.
func (pc *peerConn) abandon(cl *call) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.pending[cl.id] == cl {
		delete(pc.pending, cl.id)
		return true
	}
	return false
}

func (pc *peerConn) writeLoop() {
	var out []byte
	for {
		select {
		case <-pc.flush:
		case <-pc.done:
			return
		}
		pc.mu.Lock()
		out, pc.wbuf = pc.wbuf, out[:0]
		pc.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		if _, err := pc.conn.Write(out); err != nil {
			pc.fail(err)
			return
		}
		if cap(out) > keepBuf {
			out = nil
		}
	}
}

func (pc *peerConn) readLoop() {
	br := bufio.NewReaderSize(pc.conn, bufSize)
	var hdr [frameHeader]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			pc.fail(err)
			return
		}
		typ, id, n := hdr[0], binary.BigEndian.Uint32(hdr[1:]), binary.BigEndian.Uint32(hdr[5:])
		if n > maxFrame {
			pc.fail(fmt.Errorf("reply frame of %d bytes", n))
			return
		}
		// Each reply gets its own buffer: replay hands strings pointing
		// into it to the caller's writer, so it is never reused.
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			pc.fail(err)
			return
		}
		pc.mu.Lock()
		cl := pc.pending[id]
		delete(pc.pending, id)
		pc.mu.Unlock()
		if cl != nil {
			cl.typ, cl.payload = typ, payload
			cl.done <- struct{}{}
		}
	}
}

// fail closes the connection and fails every call in flight at once.
func (pc *peerConn) fail(cause error) {
	pc.mu.Lock()
	if pc.err != nil {
		pc.mu.Unlock()
		return
	}
	pc.err = fmt.Errorf("%w: %v", ErrPeerDown, cause)
	pending := pc.pending
	pc.pending = nil
	pc.mu.Unlock()
	close(pc.done)
	pc.conn.Close()
	for _, cl := range pending {
		cl.err = pc.err
		cl.done <- struct{}{}
	}
}

// peerPool is the connections to one peer.
type peerPool struct {
	id, addr string
	slots    []poolSlot
	next     atomic.Uint32
	closed   atomic.Bool
}

type poolSlot struct {
	mu      sync.Mutex
	conn    *peerConn
	dialing chan struct{} // closed when the dial in progress ends
}

func (p *peerPool) close() {
	p.closed.Store(true)
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if s.conn != nil {
			s.conn.fail(ErrClosed)
		}
		s.mu.Unlock()
	}
}

// peerConn returns a live connection of p, dialing one if its slot has
// none. Callers that find a dial in progress wait for it, or for their ctx.
func (c *Cluster) peerConn(ctx context.Context, p *peerPool) (*peerConn, error) {
	s := &p.slots[int(p.next.Add(1))%len(p.slots)]
	for {
		s.mu.Lock()
		if p.closed.Load() {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %s is down", ErrPeerDown, p.id)
		}
		if s.conn != nil && !s.conn.broken() {
			pc := s.conn
			s.mu.Unlock()
			return pc, nil
		}
		if wait := s.dialing; wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		s.dialing = make(chan struct{})
		s.mu.Unlock()
		break
	}
	dctx, cancel := context.WithTimeout(ctx, c.timing.DialTimeout)
	conn, err := dialProto(dctx, c.net, c.secret, p.addr, protoPeer)
	cancel()
	s.mu.Lock()
	close(s.dialing)
	s.dialing = nil
	if err == nil {
		s.conn = newPeerConn(conn)
		if p.closed.Load() {
			s.conn.fail(ErrClosed) // closed while dialing
		}
	}
	pc := s.conn
	s.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", ErrPeerDown, p.id, err)
	}
	return pc, nil
}

// pool returns the connection pool to the node id.
func (c *Cluster) pool(id string) (*peerPool, error) {
	c.poolMu.RLock()
	p := c.pools[id]
	c.poolMu.RUnlock()
	if p != nil {
		return p, nil
	}
	m, ok := c.member(id)
	if !ok || m.ClusterAddr == "" {
		return nil, ErrUnknownNode
	}
	if m.State == Dead || m.State == Left {
		return nil, fmt.Errorf("%w: %s is %s", ErrPeerDown, id, m.State)
	}
	c.poolMu.Lock()
	defer c.poolMu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if p := c.pools[id]; p != nil {
		return p, nil
	}
	p = &peerPool{id: id, addr: m.ClusterAddr, slots: make([]poolSlot, c.peerConns)}
	c.pools[id] = p
	return p, nil
}

// dropPool closes the connections to id, failing its calls in flight: the
// peer died, left or moved.
func (c *Cluster) dropPool(id string) {
	c.poolMu.Lock()
	p := c.pools[id]
	delete(c.pools, id)
	c.poolMu.Unlock()
	if p != nil {
		p.close()
	}
}

func (c *Cluster) forward(ctx context.Context, nodeID string, args [][]byte, w ReplyWriter) error {
	if len(args) == 0 {
		return errors.New("cluster: empty command")
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if nodeID == c.id {
		owned, err := c.serve(args, w)
		if err != nil {
			return err
		}
		if !owned {
			return ErrNotOwner
		}
		return nil
	}
	typ, payload, err := c.request(ctx, nodeID, msgCommand, commandSize(args), func(b []byte) []byte {
		return appendCommand(b, args)
	})
	if err != nil {
		return err
	}
	switch typ {
	case msgReply:
		if !checkReply(payload) {
			return errBadReply
		}
		replay(payload, w)
		return nil
	case msgNotOwner:
		return ErrNotOwner
	case msgFail:
		return fmt.Errorf("cluster: %s: %s", nodeID, payload)
	}
	return fmt.Errorf("cluster: %s: unexpected reply type %d", nodeID, typ)
}

// request sends a frame of type typ to nodeID and waits for the answer's
// type and payload. Its payload is size bytes that appendPayload appends
// (called under the connection's lock, so it must not block).
func (c *Cluster) request(ctx context.Context, nodeID string, typ byte, size int, appendPayload func([]byte) []byte) (byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	p, err := c.pool(nodeID)
	if err != nil {
		return 0, nil, err
	}
	pc, err := c.peerConn(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	cl, err := pc.send(typ, size, appendPayload)
	if err != nil {
		return 0, nil, err
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		if pc.abandon(cl) {
			calls.Put(cl)
			return 0, nil, ctx.Err()
		}
		<-cl.done
	}
	rtyp, payload, err := cl.typ, cl.payload, cl.err
	cl.payload, cl.err = nil, nil
	calls.Put(cl)
	return rtyp, payload, err
}

// answerInRaft serves msgInRaft.
func (c *Cluster) answerInRaft(out []byte, id uint32, node string, rec *recorder) []byte {
	if c.raft.State() != raft.Leader {
		return appendFail(out, id, "not the raft leader")
	}
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return appendFail(out, id, err.Error())
	}
	in := int64(0)
	if slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == node }) {
		in = 1
	}
	rec.reset()
	rec.Int(in)
	out = appendHeader(out, msgReply, id, len(rec.buf))
	return append(out, rec.buf...)
}

// leaderHasRemoved asks the raft leader whether this node is out of raft's
// configuration.
func (c *Cluster) leaderHasRemoved(ctx context.Context) bool {
	_, leader := c.raft.LeaderWithID()
	if leader == "" || string(leader) == c.id {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, c.timing.DialTimeout)
	defer cancel()
	typ, payload, err := c.request(ctx, string(leader), msgInRaft, len(c.id), func(b []byte) []byte {
		return append(b, c.id...)
	})
	if err != nil || typ != msgReply || !checkReply(payload) {
		return false
	}
	var w traceInt
	replay(payload, &w)
	return w.ok && w.n == 0
}

// traceInt is a ReplyWriter that keeps one Int.
type traceInt struct {
	discard
	n  int64
	ok bool
}

func (t *traceInt) Int(n int64) { t.n, t.ok = n, true }

// discard is a ReplyWriter that keeps nothing.
type discard struct{}

func (discard) SimpleString(string)     {}
func (discard) Error(string)            {}
func (discard) Int(int64)               {}
func (discard) Bulk([]byte)             {}
func (discard) BulkString(string)       {}
func (discard) Null()                   {}
func (discard) NullArray()              {}
func (discard) Array(int)               {}
func (discard) Map(int)                 {}
func (discard) Set(int)                 {}
func (discard) Double(float64)          {}
func (discard) Bool(bool)               {}
func (discard) Verbatim(string, []byte) {}
func (discard) Push(int)                {}
func (discard) SetProtocol(int)         {}
