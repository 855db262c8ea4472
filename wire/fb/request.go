package fb

import (
	"slices"
	"strconv"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// Running operations. Each operation runs as the command it mirrors, through
// the node's one command table (node.Client.Exec) in the connection's node
// session, exactly as a RESP client's command would: the same argument
// checks and error texts, authentication, ACL permissions on the command
// and its key, the OOM check, cluster routing, and the command statistics.
// The arguments are slices of the request frame and the reply goes straight
// into the response builder (reply, below), so nothing is parsed from text
// or encoded as RESP.
//
// GET and CACHE.GET, the hot reads, go through the node's fast path first
// (node.FastBatch, the batch form of node.Client.FastGet and FastCacheGet):
// the same checks without the command table's per-command machinery, and
// what does not depend on the key (the client's state and permissions, the
// shared counters, the timing sample) paid once per run of reads rather
// than per operation. What the fast path declines (errors, forwarding,
// leases to grant) runs through Exec as above, after the batch has been
// accounted for (FastBatch.End), since Exec may change what it checked.
//
// Cluster routing: a connection that asked for the slot table (a Slots
// operation) is cluster-aware, and an operation on a key another node owns
// fails with "MOVED <slot> <host:port>" naming the owner's FlatBuffers
// address; other connections' operations are forwarded to the owner, as
// the RESP port does for plain clients. An owner that advertises no
// FlatBuffers address cannot be redirected to: its keys are forwarded.

// errUnknownOp is the error result of an operation kind this server does
// not know; the number follows it.
const errUnknownOp = "ERR unknown operation kind "

// builderSize is the capacity a response builder starts with: a batch of
// 64 small values fits without growing.
const builderSize = 16 << 10

// The command names the operations run as.
var (
	cmdGet      = []byte("GET")
	cmdCacheGet = []byte("CACHE.GET")
	cmdTake     = []byte("RL.TAKE")
	cmdSet      = []byte("SET")
	cmdAuth     = []byte("AUTH")
	cmdCluster  = []byte("CLUSTER")
	argSlots    = []byte("SLOTS")
	argLease    = []byte("LEASE")
	argLimit    = []byte("LIMIT")
	argPeriod   = []byte("PERIOD")
	argBurst    = []byte("BURST")
	argCost     = []byte("COST")
	argPX       = []byte("PX")
)

// maxIntArgs is the most integer arguments one operation has (RL.TAKE's
// four); numLen is room for one in decimal.
const (
	maxIntArgs = 4
	numLen     = 20
)

// runner runs requests in a connection's node session and builds their
// responses. Once its buffers have grown to the size of the requests,
// running one allocates nothing.
type runner struct {
	maxFrame int
	n        *node.Node
	sess     *node.Client // nil for a connection refused before it had one

	reads  node.FastBatch // the request's fast-path reads
	val    []byte         // scratch: a value read by the fast path
	msg    []byte         // scratch: a MOVED error
	slots  bool           // the request being run asked for the slot table
	owners []string
	ranges []slotRange

	b     *flatbuffers.Builder
	offs  []flatbuffers.UOffsetT // the results of the request being run
	empty flatbuffers.UOffsetT   // this response's shared empty result, 0 until made
	vtGet flatbuffers.UOffsetT   // this response's vtable of a GET's value, 0 until made
	// vtCache is this response's vtable of a CACHE.GET's value and
	// state, 0 until made.
	vtCache flatbuffers.UOffsetT
	args    [10][]byte // scratch: one command's arguments
	nums    [maxIntArgs * numLen]byte
	reply   reply
}

func (r *runner) init(s *Server, sess *node.Client) {
	r.maxFrame = s.maxFrame
	r.n = s.node
	r.sess = sess
	r.b = flatbuffers.NewBuilder(builderSize)
}

// authed reports whether the session may run commands other than AUTH.
func (r *runner) authed() bool { return r.sess != nil && r.sess.Authenticated() }

// shrink drops a builder grown for a large response.
func (r *runner) shrink() {
	if cap(r.b.Bytes) > keepBuf {
		r.b = flatbuffers.NewBuilder(builderSize)
	}
	if cap(r.offs) > MaxOps/4 {
		r.offs = nil
	}
	if cap(r.val) > keepBuf {
		r.val = nil
	}
}

// handle runs the request in msg (one frame's message) and appends its
// response frame to out. fatal reports a malformed frame: its refusal is
// appended, and the connection must close.
func (r *runner) handle(out, msg []byte) (_ []byte, fatal bool) {
	id, ops, err := verifyRequest(msg, MaxOps)
	if err != nil {
		return r.refusal(out, id, err.Error()), err != errTooManyOps
	}
	var req schema.Request
	req.Init(msg, flatbuffers.GetUOffsetT(msg))
	b := r.b
	b.Reset()
	r.offs, r.empty, r.slots = r.offs[:0], 0, false
	r.vtGet, r.vtCache = 0, 0
	var op schema.Op
	r.sess.BeginFast(&r.reads)
	for i := range ops {
		req.Ops(&op, i)
		r.offs = append(r.offs, r.run(&op))
	}
	r.reads.End()
	schema.ResponseStartResultsVector(b, ops)
	for i := len(r.offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(r.offs[i])
	}
	results := b.EndVector(ops)
	var epoch uint64
	var addrs, ranges flatbuffers.UOffsetT
	if r.slots {
		epoch, addrs, ranges = r.slotTable()
	}
	schema.ResponseStart(b)
	schema.ResponseAddId(b, id)
	schema.ResponseAddResults(b, results)
	if ranges != 0 {
		schema.ResponseAddSlotEpoch(b, epoch)
		schema.ResponseAddSlotAddrs(b, addrs)
		schema.ResponseAddSlotRanges(b, ranges)
	}
	b.FinishSizePrefixed(schema.ResponseEnd(b))
	frame := b.FinishedBytes()
	if len(frame)-4 > r.maxFrame {
		// Values are refused once they would not fit (see reply.Bulk), but
		// many small results can still add up: refuse the whole request.
		return r.refusal(out, id, string(errResponseTooLarge)), false
	}
	return append(out, frame...), false
}

// refusal appends a Response that refuses request id with msg and has no
// results.
func (r *runner) refusal(out []byte, id uint64, msg string) []byte {
	b := r.b
	b.Reset()
	text := b.CreateString(msg)
	schema.ResponseStart(b)
	schema.ResponseAddId(b, id)
	schema.ResponseAddError(b, text)
	b.FinishSizePrefixed(schema.ResponseEnd(b))
	return append(out, b.FinishedBytes()...)
}

// run runs one operation as its command and returns its result table.
func (r *runner) run(op *schema.Op) flatbuffers.UOffsetT {
	kind := op.Kind()
	args := r.args[:0]
	nums := r.nums[:0]
	num := func(v int64) []byte {
		start := len(nums)
		nums = strconv.AppendInt(nums, v, 10) // fits: maxIntArgs × numLen
		return nums[start:]
	}
	switch kind {
	case schema.OpKindGet:
		key := nonNil(op.KeyBytes())
		var fr node.FastResult
		r.val, fr = r.reads.Get(r.val[:0], key)
		if res, done := r.fast(kind, fr); done {
			return res
		}
		args = append(args, cmdGet, key)
	case schema.OpKindCacheGet:
		key := nonNil(op.KeyBytes())
		lease := op.LeaseMs()
		var fr node.FastResult
		r.val, fr = r.reads.CacheGet(r.val[:0], key, lease)
		if res, done := r.fast(kind, fr); done {
			return res
		}
		args = append(args, cmdCacheGet, key)
		if lease != 0 {
			args = append(args, argLease, num(lease))
		}
	case schema.OpKindThrottle:
		if rt := r.sess.RouteKey("rl.take", op.KeyBytes()); rt.Moved && r.advertised(rt.Owner) {
			return r.moved(rt.Slot, rt.Owner)
		}
		var t schema.ThrottleArgs
		var limit, period, burst, cost int64
		if op.Throttle(&t) != nil {
			limit, period, burst, cost = t.Limit(), t.PeriodMs(), t.Burst(), t.Cost()
		}
		args = append(args, cmdTake, nonNil(op.KeyBytes()), argLimit, num(limit), argPeriod, num(period), argCost, num(cost))
		if burst != 0 {
			args = append(args, argBurst, num(burst))
		}
	case schema.OpKindSet:
		if rt := r.sess.RouteKey("set", op.KeyBytes()); rt.Moved && r.advertised(rt.Owner) {
			return r.moved(rt.Slot, rt.Owner)
		}
		args = append(args, cmdSet, nonNil(op.KeyBytes()), nonNil(op.ValueBytes()))
		if ttl := op.TtlMs(); ttl != 0 {
			args = append(args, argPX, num(ttl))
		}
	case schema.OpKindAuth:
		args = append(args, cmdAuth)
		if user := op.KeyBytes(); len(user) > 0 {
			args = append(args, user)
		}
		args = append(args, nonNil(op.ValueBytes()))
	case schema.OpKindSlots:
		r.reply = reply{b: r.b, maxFrame: r.maxFrame}
		r.reads.End()
		r.sess.Exec(&r.reply, append(args, cmdCluster, argSlots))
		if r.reply.err != 0 {
			return r.result(kind)
		}
		r.slots = true
		return r.ok()
	default:
		return r.fail(errUnknownOp + strconv.Itoa(int(kind)))
	}
	r.reply = reply{b: r.b, maxFrame: r.maxFrame}
	// Exec may change what the fast path's batch checked once (AUTH).
	r.reads.End()
	// A key whose owner could not be redirected to (fast) is forwarded.
	r.sess.ExecForward(&r.reply, args)
	return r.result(kind)
}

// fast builds the result of a fast-path read, and reports false when the
// fast path declined it (or its owner cannot be redirected to): the
// operation then runs through Exec.
func (r *runner) fast(kind schema.OpKind, fr node.FastResult) (flatbuffers.UOffsetT, bool) {
	switch fr.Status {
	case node.FastMoved:
		if !r.advertised(fr.Owner) {
			return 0, false
		}
		return r.moved(fr.Slot, fr.Owner), true
	case node.FastSlow:
		return 0, false
	}
	if kind == schema.OpKindGet && !fr.Found {
		return r.ok(), true
	}
	b := r.b
	var value flatbuffers.UOffsetT
	if fr.Found {
		if int(b.Offset())+len(r.val) > r.maxFrame {
			return r.fail(string(errResponseTooLarge)), true
		}
		value = b.CreateByteVector(r.val)
	}
	// The two shapes of a batch of hot reads, a GET's value and a fresh
	// CACHE.GET's value and state, are laid out by hand after their first
	// time in the response, pointing at the vtable that first one wrote:
	// exactly what EndObject writes, without assembling a vtable and
	// comparing it with the others each time.
	switch {
	case kind == schema.OpKindGet && fr.Found:
		if r.vtGet != 0 {
			b.Prep(flatbuffers.SizeUOffsetT, flatbuffers.SizeUOffsetT+flatbuffers.SizeSOffsetT)
			b.PlaceUOffsetT(b.Offset() - value + flatbuffers.SizeUOffsetT)
			return r.placeTable(r.vtGet), true
		}
		schema.ResultStart(b)
		schema.ResultAddValue(b, value)
		res := schema.ResultEnd(b)
		r.vtGet = r.vtableOf(res)
		return res, true
	case kind == schema.OpKindCacheGet && fr.Found:
		state := cacheState(fr.State)
		if r.vtCache != 0 {
			b.Prep(flatbuffers.SizeUOffsetT, 0)
			b.PlaceUOffsetT(b.Offset() - value + flatbuffers.SizeUOffsetT)
			b.Prep(1, 0)
			b.PlaceByte(byte(state))
			b.Prep(flatbuffers.SizeSOffsetT, 0)
			return r.placeTable(r.vtCache), true
		}
		schema.ResultStart(b)
		schema.ResultAddValue(b, value)
		schema.ResultAddCacheState(b, state)
		res := schema.ResultEnd(b)
		if state != schema.CacheStateNone {
			r.vtCache = r.vtableOf(res)
		}
		return res, true
	}
	schema.ResultStart(b)
	if fr.Found {
		schema.ResultAddValue(b, value)
	}
	if kind == schema.OpKindCacheGet {
		schema.ResultAddCacheState(b, cacheState(fr.State))
	}
	return schema.ResultEnd(b), true
}

// vtableOf returns the builder offset of the vtable of the table just
// ended at obj.
func (r *runner) vtableOf(obj flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b := r.b
	soff := flatbuffers.GetSOffsetT(b.Bytes[len(b.Bytes)-int(obj):])
	return flatbuffers.UOffsetT(flatbuffers.SOffsetT(obj) + soff)
}

// placeTable ends a table whose fields were placed by hand with the
// offset to vtable vt, as EndObject does for a vtable it finds already
// written; room for it is prepared.
func (r *runner) placeTable(vt flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	b := r.b
	obj := b.Offset() + flatbuffers.SizeSOffsetT
	b.PlaceSOffsetT(flatbuffers.SOffsetT(vt) - flatbuffers.SOffsetT(obj))
	return obj
}

// cacheState maps a node's cache state to the schema's.
func cacheState(s node.CacheState) schema.CacheState {
	switch s {
	case node.CacheFresh:
		return schema.CacheStateFresh
	case node.CacheStale:
		return schema.CacheStateStale
	case node.CacheRevalidate:
		return schema.CacheStateRevalidate
	case node.CacheMiss:
		return schema.CacheStateMiss
	case node.CacheWait:
		return schema.CacheStateWait
	}
	return schema.CacheStateNone
}

// unknownAddr stands for the address of a node that advertises no
// FlatBuffers address, in the slot table (as in MOVED errors on the RESP
// port).
const unknownAddr = "unknown:0"

// fbAddr is the FlatBuffers address member id advertises, "" for none.
func (r *runner) fbAddr(id string) string {
	if cl := r.n.Cluster(); cl != nil {
		if m, ok := cl.Member(id); ok {
			return m.Meta.FBAddr
		}
	}
	return ""
}

// advertised reports whether member id can be redirected to.
func (r *runner) advertised(id string) bool { return r.fbAddr(id) != "" }

// moved returns the result of an operation on a key of slot, which member
// owner serves: "MOVED <slot> <its FlatBuffers address>", as Redis
// Cluster's MOVED names the owner's RESP address.
func (r *runner) moved(slot uint16, owner string) flatbuffers.UOffsetT {
	r.msg = append(r.msg[:0], "MOVED "...)
	r.msg = strconv.AppendUint(r.msg, uint64(slot), 10)
	r.msg = append(r.msg, ' ')
	r.msg = append(r.msg, r.fbAddr(owner)...)
	text := r.b.CreateByteString(r.msg)
	schema.ResultStart(r.b)
	schema.ResultAddError(r.b, text)
	return schema.ResultEnd(r.b)
}

// slotRange is a run of slots owned by the node at index addr.
type slotRange struct{ start, end, addr uint16 }

// slotTable writes the slot table into the response being built: its
// epoch, the vector of owners' FlatBuffers addresses and the vector of
// ranges. ranges is 0 when the node has no table.
func (r *runner) slotTable() (epoch uint64, addrs, ranges flatbuffers.UOffsetT) {
	cl := r.n.Cluster()
	if cl == nil {
		return 0, 0, 0
	}
	t := cl.Table()
	if t == nil {
		return 0, 0, 0
	}
	r.owners, r.ranges = r.owners[:0], r.ranges[:0]
	for s := range ring.Slots {
		owner := t.Owner(uint16(s))
		i := slices.Index(r.owners, owner)
		if i < 0 {
			i = len(r.owners)
			r.owners = append(r.owners, owner)
		}
		if n := len(r.ranges); n > 0 && int(r.ranges[n-1].addr) == i && int(r.ranges[n-1].end) == s-1 {
			r.ranges[n-1].end = uint16(s)
			continue
		}
		r.ranges = append(r.ranges, slotRange{uint16(s), uint16(s), uint16(i)})
	}
	b := r.b
	if cap(r.offs) < len(r.offs)+len(r.owners) {
		r.offs = slices.Grow(r.offs, len(r.owners))
	}
	strs := r.offs[len(r.offs):len(r.offs)]
	for _, id := range r.owners {
		addr := r.fbAddr(id)
		if addr == "" {
			addr = unknownAddr
		}
		strs = append(strs, b.CreateString(addr))
	}
	b.StartVector(sizeOffset, len(strs), sizeOffset)
	for i := len(strs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(strs[i])
	}
	addrs = b.EndVector(len(strs))
	schema.ResponseStartSlotRangesVector(b, len(r.ranges))
	for i := len(r.ranges) - 1; i >= 0; i-- {
		g := r.ranges[i]
		schema.CreateSlotRange(b, g.start, g.end, g.addr)
	}
	return t.Epoch, addrs, b.EndVector(len(r.ranges))
}

// nonNil returns b, or an empty slice for an absent field: a command's
// arguments are never nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// result builds the result table of the reply just collected.
func (r *runner) result(kind schema.OpKind) flatbuffers.UOffsetT {
	rep := &r.reply
	b := r.b
	switch {
	case rep.err != 0:
		schema.ResultStart(b)
		schema.ResultAddError(b, rep.err)
		return schema.ResultEnd(b)
	case rep.tooLarge:
		return r.fail(string(errResponseTooLarge))
	}
	switch kind {
	case schema.OpKindGet:
		if !rep.hasValue {
			return r.ok()
		}
		schema.ResultStart(b)
		schema.ResultAddValue(b, rep.value)
		return schema.ResultEnd(b)
	case schema.OpKindCacheGet:
		schema.ResultStart(b)
		if rep.hasValue {
			schema.ResultAddValue(b, rep.value)
		}
		schema.ResultAddCacheState(b, rep.state)
		if rep.ints > 0 {
			schema.ResultAddToken(b, uint64(rep.int[0]))
		}
		return schema.ResultEnd(b)
	case schema.OpKindThrottle:
		if rep.ints != len(rep.int) {
			return r.fail(errReply)
		}
		v := &rep.int
		schema.ResultStart(b)
		schema.ResultAddDecision(b, schema.CreateDecision(b, v[0] == 1, v[1], v[2], v[3], v[4]))
		return schema.ResultEnd(b)
	}
	return r.ok() // SET and AUTH: OK
}

// errReply is the error result of a reply that does not have the shape its
// command promises; it would be a bug in the node.
const errReply = "ERR unexpected reply from the command"

// ok returns an empty result: success with nothing to say, or no value.
// One empty table serves the whole response.
func (r *runner) ok() flatbuffers.UOffsetT {
	if r.empty == 0 {
		schema.ResultStart(r.b)
		r.empty = schema.ResultEnd(r.b)
	}
	return r.empty
}

// fail returns a result holding an error.
func (r *runner) fail(msg string) flatbuffers.UOffsetT {
	text := r.b.CreateString(msg)
	schema.ResultStart(r.b)
	schema.ResultAddError(r.b, text)
	return schema.ResultEnd(r.b)
}

// reply is the node.Writer a command replies to. It keeps what the
// operations' results need and writes the value and the error into the
// builder as they come, the value straight from the store: GET's bulk
// string; CACHE.GET's [state, value or nil, token or nil]; RL.TAKE's five
// integers; an error. The vectors are written before the result table,
// as FlatBuffers requires.
type reply struct {
	b        *flatbuffers.Builder
	maxFrame int

	value    flatbuffers.UOffsetT
	hasValue bool
	tooLarge bool                 // the value would not fit in a frame
	err      flatbuffers.UOffsetT // the error string, 0 for none
	state    schema.CacheState
	int      [5]int64
	ints     int
}

var _ node.Writer = (*reply)(nil)

func (w *reply) Error(msg string) { w.err = w.b.CreateString(msg) }

func (w *reply) Bulk(v []byte) {
	if int(w.b.Offset())+len(v) > w.maxFrame {
		w.tooLarge = true
		return
	}
	w.value, w.hasValue = w.b.CreateByteVector(v), true
}

// BulkString is CACHE.GET's state.
func (w *reply) BulkString(s string) {
	if st := cacheState(node.CacheState(s)); st != schema.CacheStateNone {
		w.state = st
	}
}

func (w *reply) Int(n int64) {
	if w.ints < len(w.int) {
		w.int[w.ints] = n
		w.ints++
	}
}

// The rest carry nothing the operations' results need: OK, nil, the array
// headers, and types these commands do not reply with.
func (w *reply) SimpleString(string)     {}
func (w *reply) Null()                   {}
func (w *reply) NullArray()              {}
func (w *reply) Array(int)               {}
func (w *reply) Map(int)                 {}
func (w *reply) Set(int)                 {}
func (w *reply) Double(float64)          {}
func (w *reply) Bool(bool)               {}
func (w *reply) Verbatim(string, []byte) {}
func (w *reply) Push(int)                {}
func (w *reply) SetProtocol(int)         {}
