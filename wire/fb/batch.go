package fb

import (
	"errors"
	"sync/atomic"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// Batch is a list of operations sent to the server in one request, and then
// their results. The zero value is an empty batch. Add operations, run them
// with Client.Do, read each result with Result(i), where i is the index the
// adding method returned, then Reset the batch to reuse it. A reused batch
// keeps its buffers, so running it again allocates nothing.
//
// The results are read in place: a value is a slice of the response frame
// the batch received, with no decoding and no copy. It stays valid until
// the batch is Reset or run again; copy it to keep it longer, and do not
// modify it.
//
// A Batch is not safe for concurrent use. Goroutines that share a Client
// each use their own Batch (a sync.Pool of them works well).
type Batch struct {
	ops   []opSpec
	arena []byte // the keys and values of ops

	enc []byte // the request frame encode built

	frame   []byte   // the response message received, without its length prefix
	res     []uint32 // the position in frame of each result table
	refused bool     // the response refused the whole request (its error field)
	errs    bool     // some result in frame has an error (MOVED among them?)
	call    *call    // the call in flight, reused by the next Do unless abandoned

	// A batch split over the nodes of a cluster, or with operations sent
	// again after MOVED, has results in other frames: where says where each
	// operation's result is (empty when all are in frame), and subs are
	// the batches those frames were received into, kept for reuse.
	where    []loc
	subs     []*Batch
	subPools []*pool       // the node each sub-batch went to
	sent     []*clientConn // scratch for runSubs
}

// loc is where an operation's result is: result idx of subs[sub], or of
// the batch's own frame when sub is -1.
type loc struct{ sub, idx int32 }

// opSpec is one operation as added, its key and value kept in the arena.
type opSpec struct {
	kind       schema.OpKind
	key, val   span
	hasVal     bool
	ttl, lease int64 // milliseconds
	throttle   [4]int64
}

// span is a range of the arena.
type span struct{ off, end int }

// Get adds GET key; its result has the value, if the key exists.
func (b *Batch) Get(key string) int {
	return b.add(opSpec{kind: schema.OpKindGet}, key, nil)
}

// CacheGet adds CACHE.GET key LEASE lease; lease 0 asks for the server's
// default (5 s). Its result has the cache state, the value for fresh, stale
// and revalidate, and the lease token for revalidate and miss. The lease is
// sent in whole milliseconds, rounded up.
func (b *Batch) CacheGet(key string, lease time.Duration) int {
	return b.add(opSpec{kind: schema.OpKindCacheGet, lease: ceilMillisClient(lease)}, key, nil)
}

// Throttle adds RL.TAKE: take cost tokens (0 only reads) from the bucket at
// key, which admits l.Rate tokens per l.Period and holds l.Burst (l.Rate
// when 0). Its result has the decision. The period is sent in whole
// milliseconds, rounded up so that a limit is never looser than asked.
func (b *Batch) Throttle(key string, l node.Limit, cost int64) int {
	return b.add(opSpec{kind: schema.OpKindThrottle, throttle: [4]int64{l.Rate, ceilMillisClient(l.Period), l.Burst, cost}}, key, nil)
}

// Set adds SET key value, with a time to live when ttl > 0 (sent in whole
// milliseconds, rounded up). The value is copied into the batch.
func (b *Batch) Set(key string, value []byte, ttl time.Duration) int {
	return b.add(opSpec{kind: schema.OpKindSet, hasVal: true, ttl: ceilMillisClient(ttl)}, key, value)
}

// auth adds AUTH [user] password; connections send it when they open.
func (b *Batch) auth(user, password string) int {
	return b.add(opSpec{kind: schema.OpKindAuth, hasVal: true}, user, []byte(password))
}

// slots adds a request for the slot table; connections send it when they
// open, and the client when it refreshes the table.
func (b *Batch) slots() int {
	return b.add(opSpec{kind: schema.OpKindSlots}, "", nil)
}

func (b *Batch) add(op opSpec, key string, val []byte) int {
	start := len(b.arena)
	b.arena = append(b.arena, key...)
	op.key = span{start, len(b.arena)}
	b.arena = append(b.arena, val...)
	op.val = span{op.key.end, len(b.arena)}
	b.ops = append(b.ops, op)
	b.res = b.res[:0] // results of an earlier run no longer match
	return len(b.ops) - 1
}

// copyOp adds operation i of from, for a split or a resend.
func (b *Batch) copyOp(from *Batch, i int) int {
	op := from.ops[i]
	start := len(b.arena)
	b.arena = append(b.arena, from.arena[op.key.off:op.key.end]...)
	b.arena = append(b.arena, from.arena[op.val.off:op.val.end]...)
	op.key = span{start, start + op.key.end - op.key.off}
	op.val = span{op.key.end, len(b.arena)}
	b.ops = append(b.ops, op)
	b.res = b.res[:0]
	return len(b.ops) - 1
}

// ceilMillisClient converts a duration to whole milliseconds, rounding up.
// Negative durations stay negative, for the server to refuse.
func ceilMillisClient(d time.Duration) int64 {
	if d <= 0 {
		return int64(d / time.Millisecond)
	}
	return int64((d-1)/time.Millisecond) + 1
}

// Len is the number of operations in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// key is operation i's key.
func (b *Batch) key(i int) []byte { return b.arena[b.ops[i].key.off:b.ops[i].key.end] }

// Reset empties the batch for reuse. The results, and every value read
// from them, become invalid. Buffers that grew past 1 MiB for a large
// response are released; smaller ones are kept.
func (b *Batch) Reset() {
	b.ops, b.res, b.refused, b.where = b.ops[:0], b.res[:0], false, b.where[:0]
	for _, sub := range b.subs {
		sub.Reset()
	}
	b.arena = b.arena[:0]
	if cap(b.frame) > keepBuf {
		b.frame = nil
	}
	if cap(b.arena) > keepBuf {
		b.arena = nil
	}
	if cap(b.enc) > keepBuf {
		b.enc = nil
	}
}

// Result returns the result of operation i, after Do. Before Do, after a
// failed Do, or for an i out of range, its Err is ErrNoResult.
func (b *Batch) Result(i int) Result {
	if len(b.where) > 0 {
		if i < 0 || i >= len(b.where) {
			return Result{}
		}
		w := b.where[i]
		if w.sub >= 0 {
			return b.subs[w.sub].own(int(w.idx))
		}
		i = int(w.idx)
	}
	return b.own(i)
}

// own returns result i of the batch's own frame.
func (b *Batch) own(i int) Result {
	if i < 0 || i >= len(b.res) {
		return Result{}
	}
	return Result{frame: b.frame, pos: b.res[i]}
}

// ErrNoResult is the Err of a result that does not exist: the batch has not
// run, or Do failed, or the index is out of range.
var ErrNoResult = errors.New("fb: no result: run the batch with Client.Do first")

// Result is the result of one operation: a view into the batch's response
// frame, read in place. It is valid as long as the batch's results (until
// Reset or the next Do). Its methods allocate nothing, except Err when
// there is an error.
type Result struct {
	frame []byte
	pos   uint32
}

func (r Result) table() schema.Result {
	var t schema.Result
	t.Init(r.frame, flatbuffers.UOffsetT(r.pos))
	return t
}

// Err is the operation's error, a node.Error with Redis's prefix and text
// ("WRONGTYPE ...", "NOAUTH ..."), or nil.
func (r Result) Err() error {
	if r.frame == nil {
		return ErrNoResult
	}
	t := r.table()
	if msg := t.Error(); msg != nil {
		return node.Error(string(msg))
	}
	return nil
}

// Value returns the value of a GET or CACHE.GET and whether there is one. The
// slice points into the received frame: see Batch for how long it is valid.
func (r Result) Value() ([]byte, bool) {
	if r.frame == nil {
		return nil, false
	}
	t := r.table()
	v := t.ValueBytes()
	return v, v != nil
}

// CacheState is the state of a CACHE.GET ("" for other operations and
// errors).
func (r Result) CacheState() node.CacheState {
	if r.frame == nil {
		return ""
	}
	t := r.table()
	switch t.CacheState() {
	case schema.CacheStateFresh:
		return node.CacheFresh
	case schema.CacheStateStale:
		return node.CacheStale
	case schema.CacheStateRevalidate:
		return node.CacheRevalidate
	case schema.CacheStateMiss:
		return node.CacheMiss
	case schema.CacheStateWait:
		return node.CacheWait
	}
	return ""
}

// Token is the lease token of a CACHE.GET that answered revalidate or miss,
// for CACHE.FILL; 0 for none.
func (r Result) Token() uint64 {
	if r.frame == nil {
		return 0
	}
	t := r.table()
	return t.Token()
}

// Throttle is the decision of a THROTTLE, with RL.TAKE's millisecond
// figures as durations (RetryAfter is 0 when allowed). It is the zero
// value for other operations and errors.
func (r Result) Throttle() node.ThrottleResult {
	if r.frame == nil {
		return node.ThrottleResult{}
	}
	t := r.table()
	var d schema.Decision
	if t.Decision(&d) == nil {
		return node.ThrottleResult{}
	}
	res := node.ThrottleResult{
		Allowed:    !d.Limited(),
		Limit:      d.Limit(),
		Remaining:  d.Remaining(),
		ResetAfter: time.Duration(d.ResetAfterMs()) * time.Millisecond,
	}
	if ms := d.RetryAfterMs(); ms > 0 {
		res.RetryAfter = time.Duration(ms) * time.Millisecond
	}
	return res
}

// receive copies a response message, received in a connection's buffer,
// into the batch's frame and verifies it: it answers request id and has
// one result per operation. It returns a protocol error that leaves the
// connection unusable.
func (b *Batch) receive(msg []byte, id uint64) error {
	b.frame = append(b.frame[:0], msg...)
	got, res, errs, err := verifyResults(b.frame, len(b.ops), b.res[:0])
	b.res, b.errs = res, errs
	switch {
	case err != nil:
		b.res = b.res[:0]
		return err
	}
	var resp schema.Response
	resp.Init(b.frame, flatbuffers.GetUOffsetT(b.frame))
	b.refused = resp.Error() != nil
	if got != id {
		b.res = b.res[:0]
		if b.refused {
			// A refusal of a request the server could not read (id 0),
			// just before it closes the connection.
			return b.refusal()
		}
		return errResponseID
	}
	return nil
}

// refusal is the error of a response that refused the whole request.
func (b *Batch) refusal() error {
	var resp schema.Response
	resp.Init(b.frame, flatbuffers.GetUOffsetT(b.frame))
	return node.Error(string(resp.Error()))
}

// errResponseID is the protocol error of a response out of order.
const errResponseID frameError = "fb: protocol error: a response's id does not match its request"

// The states of a call.
const (
	callWaiting   int32 = iota // queued on a connection, response not arrived
	callReading                // the connection's leader is copying the response into the batch
	callDone                   // finished: err is set, done is signalled
	callAbandoned              // Do gave up (its context ended); the reader discards the response
)

// call is one request in flight on a connection. Whoever moves it out of
// callWaiting owns it: the leader reading the connection (to callReading,
// then callDone), a failing connection (to callDone) or Do (to
// callAbandoned, after which the batch no longer refers to it).
type call struct {
	state atomic.Int32
	b     *Batch
	id    uint64
	err   error
	// sig wakes the caller waiting in Do: its call is done, or it may take
	// the lead. Capacity 1; a signal is a hint, the caller checks why.
	sig chan struct{}
}

// signal wakes the call's caller, unless a signal is already pending.
func (c *call) signal() {
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

// finish records the outcome and wakes Do.
func (c *call) finish(err error) {
	c.err = err
	c.state.Store(callDone)
	c.signal()
}
