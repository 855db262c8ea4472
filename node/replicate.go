package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/internal/varbin"
	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/store"
)

// Replication and hand-off (DESIGN §5) share one mechanism: a stream per
// peer of records that each carry a key's whole state (value, kind, expiry,
// cache metadata: a limiter bucket or a lease is just an entry), or its
// absence.
//
//   - After a write command runs, the owner of the key's slot reads each of
//     its keys under the shard lock and appends the key's state to the
//     stream of every peer that holds the slot: the slot's replicas, and
//     during a plan the nodes the target table adds. Reading and appending
//     under the lock orders the records of one key as its writes were
//     ordered, and since a record is a state, not an operation, a record
//     that arrives twice or describes a failed command does no harm.
//   - A peer that must hold a slot it has not been fed (a new replica, a new
//     owner in a plan, a replica that restarted) first gets a reset of the
//     slot and then every entry of it, read shard by shard under the locks,
//     through the same stream, so live writes and the copy stay in order.
//   - Each stream has one sender that sends what has gathered as one
//     message, waits for the peer to apply it, and retries a failed send
//     until the peer is no longer a holder; records are counted, and the
//     peer's acknowledgement moves the stream's acked count.
//
// With synchronous replication (the default) a protocol server calls
// AwaitReplicas before it sends replies, so a reply to a write leaves only
// once the peers confirmed it (pipelined writes share one round trip); when
// they do not within the timeout, the connection is closed with the
// replies unsent. With asynchronous replication replies leave at once, and
// WAIT waits for the acknowledgements.
//
// A receiver applies a record for a slot when the sender owns the slot in
// the receiver's table and the receiver holds it (table or target), or when
// the sender's table is newer than its own: a former owner's late records
// never overwrite what the new owner wrote.

// Replication modes for Config.Replication.
const (
	ReplicationSync  = "sync"  // replies wait for the replicas (the default)
	ReplicationAsync = "async" // replies leave at once; WAIT waits
)

// defaultReplicationTimeout bounds how long a reply waits for replicas.
const defaultReplicationTimeout = 2 * time.Second

// Record operations.
const (
	recPut   byte = 1 // slot, key, kind, expiry, cache, value
	recDel   byte = 2 // slot, key
	recReset byte = 3 // slot: delete everything of it (a copy follows)
)

// replVersion leads every replication message.
const replVersion = 2

const (
	// maxSend bounds one message's records (a larger single record goes
	// alone).
	maxSend = 4 << 20
	// feedHigh and feedLow pace a full copy: it waits, between shards, for
	// the stream's backlog to fall under feedLow once it passed feedHigh.
	feedHigh = 16 << 20
	feedLow  = 4 << 20
	// maxBacklog is the most a stream keeps for a peer that does not
	// answer; past it the backlog is dropped and the peer is fed anew.
	maxBacklog = 256 << 20
)

// replicator is a node's replication and hand-off.
type replicator struct {
	n       *Node
	sync    bool
	timeout time.Duration

	routes atomic.Pointer[routes] // nil on a node without peers to feed
	frozen atomic.Uint64          // the plan whose given-away slots take no writes
	// Writes between their routing check and their records' append count
	// themselves in writers[phase]; handOff, once it froze slots, flips
	// the phase and waits for the old count to drain, so no write it let
	// through appends a record after the snapshot it waits on.
	phase   atomic.Uint32
	writers [2]atomic.Int64

	// seenEpoch and seenPlan are the newest placement a peer sent records
	// under while this node had an older one.
	seenMu              sync.Mutex
	seenEpoch, seenPlan uint64

	mu      sync.Mutex
	streams map[string]*stream
	held    []bool // per slot: held (table or target) at the last placement
	wake    chan struct{}

	stats replStats
}

type replStats struct {
	records, rejected, applied, fed atomic.Int64
	timeouts                        atomic.Int64
}

// routes is where this node's writes go, for one placement.
type routes struct {
	place cluster.Placement
	dests [ring.Slots][]*stream // per slot this node owns: the peers it feeds
	// waits is, per slot, how many of dests (the first) a synchronous
	// write waits for: the table's replicas. The holders a plan adds catch
	// up through the hand-off, which waits for them before the switch.
	waits [ring.Slots]uint8
	gives [ring.Slots]bool // per slot: owned now, owned elsewhere in the target
}

// stream carries records to one peer.
type stream struct {
	id string

	mu       sync.Mutex
	buf      []byte // records not sent yet
	enq      uint64 // records appended in all
	acked    uint64 // records the peer applied
	lost     uint64 // records up to this one were dropped unsent
	drops    int    // backlogs dropped because the peer did not answer
	ackCh    chan struct{}
	closed   bool
	fed      []bool // per slot: fed a full copy, and followed since
	feedSeq  uint64 // the last record of the last full copy
	wake     chan struct{}
	failures int
}

func (r *replicator) init(n *Node, cfg Config) error {
	r.n = n
	switch cfg.Replication {
	case "", ReplicationSync:
		r.sync = true
	case ReplicationAsync:
	default:
		return fmt.Errorf("node: replication %q: want %s or %s", cfg.Replication, ReplicationSync, ReplicationAsync)
	}
	r.timeout = cfg.ReplicationTimeout
	if r.timeout <= 0 {
		r.timeout = defaultReplicationTimeout
	}
	r.streams = map[string]*stream{}
	r.held = make([]bool, ring.Slots)
	r.wake = make(chan struct{}, 1)
	return nil
}

// start follows the cluster's placements.
func (r *replicator) start() {
	cl := r.n.cluster
	cl.OnChange(r.place)
	r.place(cl.Placement())
	r.n.done.Add(1)
	go r.feedLoop()
}

// Replicating reports whether this node sends its writes to peers
// synchronously, so that AwaitReplicas may wait a network round trip. A
// protocol server that multiplexes many connections on a few threads (an
// event loop) should serve new connections on their own goroutines while it
// does, or one connection's wait would hold up the others.
func (n *Node) Replicating() bool { return n.repl.sync && n.repl.routes.Load() != nil }

// replWait is how far a client's writes went into one stream.
type replWait struct {
	s   *stream
	seq uint64
}

// AwaitReplicas returns once the replicas have confirmed every write this
// client ran since the last call, when the node replicates synchronously.
// Protocol servers call it before sending replies, so a reply never
// acknowledges a write the replicas lack. It reports false when they did not
// confirm within the replication timeout: the server must then close the
// connection without sending the replies.
func (c *Client) AwaitReplicas() bool {
	if !c.replPending {
		return true
	}
	c.replPending = false
	ok := c.n.repl.await(c.replWaits, time.Now().Add(c.n.repl.timeout), true)
	if !ok {
		c.n.repl.stats.timeouts.Add(1)
	}
	return ok
}

// await waits until every stream in ws acknowledged its seq (or closed,
// since a peer that no longer holds the slots needs nothing), until
// deadline.
//
// A client's wait (lenient) does not wait for a peer gossip suspects or
// declared dead: its records stay queued for it, but the write is
// acknowledged on the primary's copy, so a replica's failure stalls
// writes for a failed probe (about a second) rather than until the
// failover (about five). A hand-off waits for every peer.
func (r *replicator) await(ws []replWait, deadline time.Time, lenient bool) bool {
	var timer *time.Timer
	var recheck *time.Ticker
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if recheck != nil {
			recheck.Stop()
		}
	}()
	for _, w := range ws {
		for {
			ch, done, ok := w.s.status(w.seq)
			if done {
				if !ok {
					return false
				}
				break
			}
			if lenient && r.failing(w.s.id) {
				break
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				return false
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			}
			var tick <-chan time.Time
			if lenient {
				if recheck == nil {
					recheck = time.NewTicker(suspectCheck)
				}
				tick = recheck.C
			}
			select {
			case <-ch:
			case <-tick:
			case <-timer.C:
				return false
			}
		}
	}
	return true
}

// suspectCheck is how often a waiting write looks whether gossip suspects
// the peer it waits for.
const suspectCheck = 50 * time.Millisecond

// failing reports whether gossip suspects the peer or declared it dead.
func (r *replicator) failing(id string) bool {
	m, ok := r.n.cluster.Member(id)
	return !ok || m.State == cluster.Suspect || m.State == cluster.Dead
}

// status reports whether seq is settled, whether it reached the peer, and a
// channel closed at the next acknowledgement.
func (s *stream) status(seq uint64) (ch chan struct{}, settled, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case seq <= s.lost:
		return nil, true, false
	case seq <= s.acked || s.closed:
		return nil, true, true
	}
	return s.ackCh, false, false
}

// enterWrite counts a write command in the current phase (see writers),
// when this node feeds peers; leaveWrite ends it, once.
func (c *Client) enterWrite() {
	r := &c.n.repl
	if r.routes.Load() == nil {
		return
	}
	p := r.phase.Load()
	r.writers[p].Add(1)
	c.writePhase = p + 1
}

func (c *Client) leaveWrite() {
	if c.writePhase != 0 {
		c.n.repl.writers[c.writePhase-1].Add(-1)
		c.writePhase = 0
	}
}

// saw records the placement of a peer ahead of this node.
func (r *replicator) saw(epoch, plan uint64) {
	r.seenMu.Lock()
	if epoch > r.seenEpoch || (epoch == r.seenEpoch && plan > r.seenPlan) {
		r.seenEpoch, r.seenPlan = epoch, plan
	}
	r.seenMu.Unlock()
}

// behind reports whether a peer sent records under a placement newer than p.
func (r *replicator) behind(p cluster.Placement) bool {
	r.seenMu.Lock()
	defer r.seenMu.Unlock()
	return r.seenEpoch > p.Table.Epoch || (r.seenEpoch == p.Table.Epoch && r.seenPlan > p.Plan)
}

// replicate sends the state of the keys a write command named to the peers
// that hold their slots.
func (c *Client) replicate(cmd *Command, args [][]byte) {
	rt := c.n.repl.routes.Load()
	if rt == nil {
		return
	}
	if cmd.Flags&flagAllKeys != 0 {
		c.n.repl.resetOwned(c, rt)
		return
	}
	n := cmd.keyCount(len(args))
	for i := 0; i < n; i++ {
		key := args[cmd.FirstKey+i*cmd.Step]
		slot := ring.KeySlot(key)
		if ds := rt.dests[slot]; len(ds) > 0 {
			c.replicateKey(ds, int(rt.waits[slot]), slot, key)
		}
	}
}

// replicateKey appends key's state to the streams ds, under its shard lock;
// a synchronous write waits for the first waits of them.
func (c *Client) replicateKey(ds []*stream, waits int, slot uint16, key []byte) {
	var h store.Handle
	c.n.store.Open(&h, key, c.locks)
	c.scratch = appendKeyState(c.scratch[:0], &h, slot, key)
	for i, s := range ds {
		seq := s.append(c.scratch, 1)
		if i < waits {
			c.noteWait(s, seq)
		}
	}
	h.Close()
	c.releaseScratch()
}

// noteWait records that this client's writes reach seq in s.
func (c *Client) noteWait(s *stream, seq uint64) {
	if c.n.repl.sync {
		c.replPending = true
	}
	for i := range c.replWaits {
		if c.replWaits[i].s == s {
			c.replWaits[i].seq = seq
			return
		}
	}
	// Streams of peers that left are dropped here, so the list stays as
	// short as the peer list.
	c.replWaits = slices.DeleteFunc(c.replWaits, func(w replWait) bool { return w.s.isClosed() })
	c.replWaits = append(c.replWaits, replWait{s, seq})
}

// appendKeyState appends the record of the key h has open: a put of its
// entry, or a delete when it is absent.
func appendKeyState(b []byte, h *store.Handle, slot uint16, key []byte) []byte {
	switch c, cached := h.Cache(); {
	case h.Exists():
		e := store.Entry{Key: key, Value: h.Value(), Kind: h.Kind(), ExpireAt: h.ExpireAt(), Cache: c, HasCache: cached, Slot: slot}
		return appendPut(b, &e)
	case cached && c.LeaseUntil != 0:
		e := store.Entry{Key: key, Kind: store.KindNone, ExpireAt: c.LeaseUntil, Cache: c, HasCache: true, Slot: slot}
		return appendPut(b, &e)
	}
	b = append(b, recDel)
	b = binary.BigEndian.AppendUint16(b, slot)
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

// appendPut lays out a put: op, slot, key, kind, expiry, a cache flag and
// the three cache fields when set, then the value.
func appendPut(b []byte, e *store.Entry) []byte {
	b = append(b, recPut)
	b = binary.BigEndian.AppendUint16(b, e.Slot)
	b = binary.AppendUvarint(b, uint64(len(e.Key)))
	b = append(b, e.Key...)
	b = append(b, byte(e.Kind))
	b = binary.AppendVarint(b, e.ExpireAt)
	if e.HasCache {
		b = append(b, 1)
		b = binary.AppendVarint(b, e.Cache.FreshUntil)
		b = binary.AppendUvarint(b, e.Cache.LeaseToken)
		b = binary.AppendVarint(b, e.Cache.LeaseUntil)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Value)))
	return append(b, e.Value...)
}

func appendReset(b []byte, slot uint16) []byte {
	b = append(b, recReset)
	return binary.BigEndian.AppendUint16(b, slot)
}

// resetOwned replicates FLUSHALL and FLUSHDB: every peer resets the slots
// this node owns.
func (r *replicator) resetOwned(c *Client, rt *routes) {
	for s := range ring.Slots {
		for _, st := range rt.dests[s] {
			c.noteWait(st, st.append(appendReset(nil, uint16(s)), 1))
		}
	}
}

// append adds n encoded records to the stream and returns the sequence
// number of the last.
func (s *stream) append(rec []byte, n int) uint64 {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0
	}
	s.buf = append(s.buf, rec...)
	s.enq += uint64(n)
	seq := s.enq
	if len(s.buf) > maxBacklog {
		// The peer has not answered for long: drop the backlog, fail the
		// writes waiting on it, and feed the peer anew once it answers.
		s.buf = s.buf[:0]
		s.lost = s.enq
		s.drops++
		clear(s.fed)
		close(s.ackCh)
		s.ackCh = make(chan struct{})
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return seq
}

func (s *stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *stream) backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ackCh)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// send runs a stream's sender: it sends what gathered, one message at a
// time, and retries a failed message until it is applied or the stream
// closes.
func (r *replicator) send(s *stream) {
	defer r.n.done.Done()
	var msg []byte
	var upTo uint64
	backoff := 10 * time.Millisecond
	for {
		if msg == nil {
			s.mu.Lock()
			for len(s.buf) == 0 && !s.closed {
				s.mu.Unlock()
				select {
				case <-s.wake:
				case <-r.n.stop:
					return
				}
				s.mu.Lock()
			}
			if s.closed {
				s.mu.Unlock()
				return
			}
			msg = r.header(msg[:0])
			msg = append(msg, s.buf...)
			s.buf = s.buf[:0]
			upTo = s.enq
			if cap(s.buf) > maxSend {
				s.buf = nil
			}
			s.mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
		err := r.n.cluster.Replicate(ctx, s.id, msg)
		cancel()
		if err != nil {
			s.mu.Lock()
			s.failures++
			first := s.failures == 1
			dropped := s.lost >= upTo
			s.mu.Unlock()
			if first {
				r.n.log.Warn("replication to a peer failed, retrying", "peer", s.id, "err", err)
			}
			if dropped {
				msg = nil // the backlog overflowed meanwhile; what it held is gone
				continue
			}
			select {
			case <-time.After(backoff):
			case <-r.n.stop:
				return
			}
			backoff = min(2*backoff, time.Second)
			if s.isClosed() {
				return
			}
			continue
		}
		backoff = 10 * time.Millisecond
		s.mu.Lock()
		if s.failures > 0 {
			r.n.log.Info("replication to a peer resumed", "peer", s.id, "failed_sends", s.failures)
			s.failures = 0
		}
		if upTo > s.acked && upTo > s.lost && !s.closed {
			s.acked = upTo
			close(s.ackCh)
			s.ackCh = make(chan struct{})
		}
		s.mu.Unlock()
		msg = nil
	}
}

// header starts a message: version, this node's ID, and the epoch of its
// table and the plan of its placement.
func (r *replicator) header(b []byte) []byte {
	b = append(b, replVersion)
	b = binary.AppendUvarint(b, uint64(len(r.n.id)))
	b = append(b, r.n.id...)
	p := r.n.cluster.Placement()
	var epoch uint64
	if p.Table != nil {
		epoch = p.Table.Epoch
	}
	b = binary.AppendUvarint(b, epoch)
	return binary.AppendUvarint(b, p.Plan)
}

// place follows a new placement: the streams and routes of the slots this
// node owns, and the data of slots it no longer holds.
//
// A node acts only on the latest placement, and only while the cluster
// knows it as this process: a node replaying old raft entries after a
// restart must neither feed peers nor drop what peers already fed it.
func (r *replicator) place(p cluster.Placement) {
	cl := r.n.cluster
	if p.Table == nil || !cl.Serving() {
		return
	}
	if cur := cl.Placement(); cur.Table != p.Table || cur.Target != p.Target || cur.Plan != p.Plan {
		return // a newer placement is queued
	}
	me := r.n.id
	r.mu.Lock()
	rt := &routes{place: p}
	used := map[string]*stream{}
	sets := map[string][]*stream{} // dest lists shared between slots
	var key []byte
	var ids []string
	for s := range ring.Slots {
		slot := uint16(s)
		if p.Table.Owner(slot) != me {
			continue
		}
		// The table's replicas first (writes wait for them), then the
		// holders the target adds.
		ids = append(ids[:0], p.Table.Replicas(slot)...)
		slices.Sort(ids)
		waits := len(ids)
		if p.Target != nil {
			if o := p.Target.Owner(slot); o != me {
				rt.gives[s] = true
				ids = append(ids, o)
			}
			ids = append(ids, p.Target.Replicas(slot)...)
			extra := slices.DeleteFunc(ids[waits:], func(id string) bool { return id == me || slices.Contains(ids[:waits], id) })
			slices.Sort(extra)
			ids = append(ids[:waits], slices.Compact(extra)...)
		}
		if len(ids) == 0 {
			continue
		}
		rt.waits[s] = uint8(waits)
		key = append(key[:0], byte(waits))
		for _, id := range ids {
			key = append(append(key, id...), 0)
		}
		ds, ok := sets[string(key)]
		if !ok {
			for _, id := range ids {
				st := used[id]
				if st == nil {
					st = r.streams[id]
					if st == nil {
						st = r.newStream(id)
					}
					used[id] = st
				}
				ds = append(ds, st)
			}
			sets[string(key)] = ds
		}
		rt.dests[s] = ds
	}
	// A peer fed a slot that it no longer gets from this node must be fed
	// anew if it gets it again; peers that get nothing close.
	for id, st := range r.streams {
		if used[id] == nil {
			st.close()
			delete(r.streams, id)
			continue
		}
		st.mu.Lock()
		for s := range ring.Slots {
			if st.fed[s] && !slices.Contains(rt.dests[s], st) {
				st.fed[s] = false
			}
		}
		st.mu.Unlock()
	}
	for id, st := range used {
		r.streams[id] = st
	}
	// Slots this node held and no longer does are dropped, unless a peer
	// already sent records under a newer placement than this one: then
	// this node is catching up on raft (after a partition healed, say),
	// what it was fed may be for a plan it has not applied yet, and the
	// drop waits for a placement as new as the peers'.
	behind := r.behind(p)
	var drop []bool
	for s := range ring.Slots {
		holds := p.Table.Holds(me, uint16(s)) || p.Target.Holds(me, uint16(s))
		if r.held[s] && !holds && behind {
			continue // still held, for a current placement to decide
		}
		if r.held[s] && !holds {
			if drop == nil {
				drop = make([]bool, ring.Slots)
			}
			drop[s] = true
		}
		r.held[s] = holds
	}
	if len(r.streams) == 0 {
		r.routes.Store(nil)
	} else {
		r.routes.Store(rt)
	}
	r.mu.Unlock()
	if drop != nil {
		n := r.n.store.DeleteSlots(func(s uint16) bool { return drop[s] }, nil)
		r.n.log.Info("dropped the keys of slots this node no longer holds", "keys", n, "epoch", p.Table.Epoch)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *replicator) newStream(id string) *stream {
	s := &stream{id: id, ackCh: make(chan struct{}), wake: make(chan struct{}, 1), fed: make([]bool, ring.Slots)}
	r.n.done.Add(1)
	go r.send(s)
	return s
}

// feedLoop feeds peers the slots they must hold and have not been fed.
func (r *replicator) feedLoop() {
	defer r.n.done.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.n.stop:
			return
		case <-r.wake:
		case <-tick.C: // a stream that overflowed is fed again
		}
		r.feedAll()
	}
}

// feedAll feeds every stream the slots it lacks.
func (r *replicator) feedAll() {
	rt := r.routes.Load()
	if rt == nil {
		return
	}
	r.mu.Lock()
	streams := make([]*stream, 0, len(r.streams))
	for _, st := range r.streams {
		streams = append(streams, st)
	}
	r.mu.Unlock()
	for _, st := range streams {
		r.feed(rt, st)
	}
}

// feed sends st a full copy of the slots it gets from this node and was not
// fed: a reset of each, then each entry, through the stream.
func (r *replicator) feed(rt *routes, st *stream) {
	want := make([]bool, ring.Slots)
	n := 0
	st.mu.Lock()
	for s := range ring.Slots {
		if !st.fed[s] && slices.Contains(rt.dests[s], st) {
			want[s] = true
			n++
		}
	}
	st.mu.Unlock()
	if n == 0 {
		return
	}
	start := time.Now()
	var b []byte
	for s := range ring.Slots {
		if want[s] {
			b = appendReset(b, uint16(s))
		}
	}
	st.append(b, n)
	keys := 0
	var rec []byte
	r.n.store.ForEachInSlots(func(s uint16) bool { return want[s] }, func(e *store.Entry) {
		rec = appendPut(rec[:0], e)
		st.append(rec, 1)
		keys++
	}, func() {
		// Pace the copy to the peer: hold off while the backlog is large.
		if st.backlog() > feedHigh {
			for st.backlog() > feedLow && !st.isClosed() {
				select {
				case <-r.n.stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}
	})
	st.mu.Lock()
	if !st.closed && r.routes.Load() == rt && st.lost < st.enq {
		for s := range ring.Slots {
			if want[s] {
				st.fed[s] = true
			}
		}
		st.feedSeq = st.enq
	}
	st.mu.Unlock()
	r.stats.fed.Add(int64(keys))
	r.n.log.Info("fed slots to a peer", "peer", st.id, "slots", n, "keys", keys, "took", time.Since(start).Round(time.Millisecond))
}

// handOff is Handler.HandOff: it waits until every peer got its full
// copies, stops writes to the slots this node gives away, and waits until
// the peers applied everything written before that.
func (r *replicator) handOff(ctx context.Context, p cluster.Placement) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	wait := func(done func() bool) error {
		for !done() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-r.n.stop:
				return ErrClosed
			case <-tick.C:
			}
		}
		return nil
	}
	current := func() *routes {
		rt := r.routes.Load()
		if rt != nil && rt.place.Plan == p.Plan && rt.place.Target == p.Target {
			return rt
		}
		return nil
	}
	if err := wait(func() bool {
		rt := current()
		if rt == nil {
			// No routes: this node owns nothing any peer must get.
			return r.routes.Load() == nil
		}
		return r.allFed(rt)
	}); err != nil {
		return err
	}
	r.frozen.Store(p.Plan)
	old := r.phase.Load()
	r.phase.Store(1 - old)
	if err := wait(func() bool { return r.writers[old].Load() == 0 }); err != nil {
		r.frozen.CompareAndSwap(p.Plan, 0)
		return err
	}
	ws := r.snapshot()
	if err := wait(func() bool { return r.await(ws, time.Now(), false) }); err != nil {
		r.frozen.CompareAndSwap(p.Plan, 0)
		return err
	}
	return nil
}

// allFed reports whether every stream was fed every slot it gets and
// applied the copies.
func (r *replicator) allFed(rt *routes) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.streams {
		st.mu.Lock()
		ok := st.acked >= st.feedSeq
		for s := 0; ok && s < ring.Slots; s++ {
			if !st.fed[s] && slices.Contains(rt.dests[s], st) {
				ok = false
			}
		}
		st.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// snapshot is every stream's count of records appended so far.
func (r *replicator) snapshot() []replWait {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := make([]replWait, 0, len(r.streams))
	for _, st := range r.streams {
		st.mu.Lock()
		ws = append(ws, replWait{st, st.enq})
		st.mu.Unlock()
	}
	return ws
}

// refuses reports whether this node must not run commands on slot now,
// though its table names it the owner: it gave the slot away in the plan
// in progress, or it restarted and the cluster has not taken it back yet.
func (n *Node) refuses(slot uint16) bool {
	if !n.cluster.Serving() {
		return true
	}
	rt := n.repl.routes.Load()
	return rt != nil && rt.gives[slot] && n.repl.frozen.Load() == rt.place.Plan
}

var errBadReplication = errors.New("malformed replication message")

// errNoReplicas answers a write the replicas did not confirm in time, where
// the reply can still be replaced (Do, forwarded commands): Redis's error
// for too few replicas.
var errNoReplicas = Error("NOREPLICAS Not enough good replicas to write.")

// serveReplicate is Handler.ServeReplicate: it applies a message of
// records from the owner of their slots.
func (r *replicator) serveReplicate(msg []byte) error {
	d := varbin.Reader{B: msg}
	if d.Byte() != replVersion {
		return errBadReplication
	}
	from := string(d.Bytes())
	epoch, plan := d.Uvarint(), d.Uvarint()
	if d.Err {
		return errBadReplication
	}
	p := r.n.cluster.Placement()
	me := r.n.id
	// A sender with a newer table, or the same table and a newer plan, knows
	// more than this node: a feed for a plan this node has not applied yet
	// must not be dropped as if it came from a stranger.
	ahead := p.Table == nil || epoch > p.Table.Epoch || (epoch == p.Table.Epoch && plan > p.Plan)
	if ahead {
		r.saw(epoch, plan)
	}
	return r.apply(d.B, func(slot uint16) bool {
		if ahead {
			return true
		}
		return p.Table.Owner(slot) == from && (p.Table.Holds(me, slot) || p.Target.Holds(me, slot))
	})
}

// apply applies records to the store, those of slots accept takes.
func (r *replicator) apply(records []byte, accept func(slot uint16) bool) error {
	d := varbin.Reader{B: records}
	var resets []bool
	flushResets := func() {
		if resets != nil {
			r.n.store.DeleteSlots(func(s uint16) bool { return resets[s] }, nil)
			resets = nil
		}
	}
	var h store.Handle
	var e store.Entry
	for len(d.B) > 0 && !d.Err {
		op := d.Byte()
		slot := d.Uint16()
		if d.Err || slot >= ring.Slots {
			return errBadReplication
		}
		ok := accept(slot)
		r.stats.records.Add(1)
		if !ok {
			r.stats.rejected.Add(1)
		}
		switch op {
		case recReset:
			if ok {
				if resets == nil {
					resets = make([]bool, ring.Slots)
				}
				resets[slot] = true
			}
			continue
		case recDel:
			key := d.Bytes()
			if d.Err {
				return errBadReplication
			}
			flushResets()
			if ok {
				r.n.store.Open(&h, key, nil)
				h.Delete()
				h.Close()
				r.n.tracking.invalidateRemoved(key)
			}
		case recPut:
			e = store.Entry{Slot: slot, Key: d.Bytes(), Kind: store.Kind(d.Byte()), ExpireAt: d.Varint()}
			if d.Byte() == 1 {
				e.HasCache = true
				e.Cache = store.Cache{FreshUntil: d.Varint(), LeaseToken: d.Uvarint(), LeaseUntil: d.Varint()}
			}
			e.Value = d.Bytes()
			if d.Err || e.Kind > store.KindLimiter {
				return errBadReplication
			}
			flushResets()
			if ok {
				r.n.store.Open(&h, e.Key, nil)
				err := h.Restore(&e)
				h.Close()
				if err != nil {
					return fmt.Errorf("applying %q: %w", e.Key, err)
				}
				r.n.tracking.invalidateRemoved(e.Key)
			}
		default:
			return errBadReplication
		}
		if ok {
			r.stats.applied.Add(1)
		}
	}
	if d.Err {
		return errBadReplication
	}
	flushResets()
	return nil
}

// waitReplicas is WAIT: the number of peers that applied every write this
// client sent them, waiting up to timeout (0: forever) for at least want.
func (c *Client) waitReplicas(want int, timeout time.Duration) int {
	r := &c.n.repl
	count := func() int {
		r.mu.Lock()
		streams := make([]*stream, 0, len(r.streams))
		for _, st := range r.streams {
			streams = append(streams, st)
		}
		r.mu.Unlock()
		n := 0
		for _, st := range streams {
			var seq uint64
			for _, w := range c.replWaits {
				if w.s == st {
					seq = w.seq
				}
			}
			if _, settled, ok := st.status(seq); settled && ok {
				n++
			}
		}
		return n
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n := count()
		if n >= want || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return n
		}
		select {
		case <-time.After(time.Millisecond):
		case <-c.n.stop:
			return n
		}
	}
}

// replicationInfo is INFO's replication section.
func (n *Node) replicationInfo(b []byte) []byte {
	mode := ReplicationAsync
	if n.repl.sync {
		mode = ReplicationSync
	}
	b = field(b, "role", "master")
	b = field(b, "sluice_replication", mode)
	r := &n.repl
	r.mu.Lock()
	ids := make([]string, 0, len(r.streams))
	for id := range r.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = fieldInt(b, "connected_slaves", int64(len(ids)))
	for i, id := range ids {
		st := r.streams[id]
		st.mu.Lock()
		fed := 0
		for _, f := range st.fed {
			if f {
				fed++
			}
		}
		state := "online"
		if st.failures > 0 {
			state = "retrying"
		}
		b = field(b, fmt.Sprintf("slave%d", i), fmt.Sprintf("id=%s,state=%s,offset=%d,acked=%d,backlog=%d,fed_slots=%d,backlogs_dropped=%d",
			strings.ReplaceAll(id, ",", "_"), state, st.enq, st.acked, len(st.buf), fed, st.drops))
		st.mu.Unlock()
	}
	r.mu.Unlock()
	b = fieldInt(b, "sluice_repl_records_received", r.stats.records.Load())
	b = fieldInt(b, "sluice_repl_records_applied", r.stats.applied.Load())
	b = fieldInt(b, "sluice_repl_records_rejected", r.stats.rejected.Load())
	b = fieldInt(b, "sluice_repl_keys_fed", r.stats.fed.Load())
	b = fieldInt(b, "sluice_repl_timeouts", r.stats.timeouts.Load())
	return b
}

func init() {
	register(&Command{Name: "wait", Arity: 3, Flags: flagNoScript, Group: "generic", Since: "3.0.0",
		Summary: "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
		Handler: cmdWait})
}

// cmdWait is WAIT numreplicas timeout: the number of replicas that applied
// every write this connection sent them, waiting up to timeout ms (0:
// without limit) for numreplicas of them. With synchronous replication the
// writes were applied before their replies, so it answers at once.
func cmdWait(c *Client, args [][]byte) {
	want, ok := parseInt(args[1])
	if !ok {
		c.err(errNotInt)
		return
	}
	ms, ok := parseInt(args[2])
	if !ok {
		c.err("ERR timeout is not an integer or out of range")
		return
	}
	if ms < 0 {
		c.err("ERR timeout is negative")
		return
	}
	if c.n.cluster == nil {
		c.w.Int(0)
		return
	}
	c.w.Int(int64(c.waitReplicas(int(want), time.Duration(ms)*time.Millisecond)))
}
