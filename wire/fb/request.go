package fb

import (
	"context"
	"math"
	"strconv"
	"time"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/limiter"
	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// Errors of single operations, sent in their Result. The node's own errors
// (WRONGTYPE, OOM, RL.TAKE's parameter errors) pass through with their text.
const (
	errNoAuth       = "NOAUTH Authentication required."
	errLease        = "ERR LEASE must be positive"
	errUnknownOpFmt = "ERR unknown operation kind "
)

// builderSize is the capacity a response builder starts with: a batch of
// 64 small values fits without growing.
const builderSize = 16 << 10

// maxMillis is the most milliseconds a time.Duration holds.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// runner runs requests against the node and builds their responses. It
// belongs to one connection; once its buffers have grown to the size of
// the requests, running one allocates nothing.
type runner struct {
	node     *node.Node
	ctx      context.Context
	maxFrame int
	sess     *node.Client // the node session AUTH runs in; nil for a refused connection
	authed   bool

	b     *flatbuffers.Builder
	offs  []flatbuffers.UOffsetT // the results of the request being run
	empty flatbuffers.UOffsetT   // this response's shared empty result, 0 until made
	val   []byte                 // scratch: a value copied out of the store
	args  [3][]byte              // scratch: an AUTH command
	reply authReply
}

func (r *runner) init(s *Server, sess *node.Client) {
	r.node = s.node
	r.ctx = context.Background()
	r.maxFrame = s.maxFrame
	r.sess = sess
	r.authed = sess != nil && sess.Authenticated()
	r.b = flatbuffers.NewBuilder(builderSize)
}

// shrink drops a builder grown for a large response.
func (r *runner) shrink() {
	if cap(r.b.Bytes) > keepBuf {
		r.b = flatbuffers.NewBuilder(builderSize)
	}
	if cap(r.val) > keepBuf {
		r.val = nil
	}
	if cap(r.offs) > MaxOps/4 {
		r.offs = nil
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
	r.offs, r.empty = r.offs[:0], 0
	var op schema.Op
	for i := range ops {
		req.Ops(&op, i)
		r.offs = append(r.offs, r.run(&op))
	}
	schema.ResponseStartResultsVector(b, ops)
	for i := len(r.offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(r.offs[i])
	}
	results := b.EndVector(ops)
	schema.ResponseStart(b)
	schema.ResponseAddId(b, id)
	schema.ResponseAddResults(b, results)
	b.FinishSizePrefixed(schema.ResponseEnd(b))
	frame := b.FinishedBytes()
	if len(frame)-4 > r.maxFrame {
		// Values are refused once they would not fit (see value), but many
		// small results can still add up: refuse the whole request.
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

// run runs one operation and returns its result table.
func (r *runner) run(op *schema.Op) flatbuffers.UOffsetT {
	kind := op.Kind()
	if !r.authed && kind != schema.OpKindAuth {
		return r.fail(errNoAuth)
	}
	key := borrow(op.KeyBytes())
	switch kind {
	case schema.OpKindGet:
		v, ok, err := r.node.AppendValue(r.ctx, r.val[:0], key)
		r.val = v
		switch {
		case err != nil:
			return r.fail(err.Error())
		case !ok:
			return r.ok()
		}
		return r.value(v, schema.CacheStateNone, 0)
	case schema.OpKindCacheGet:
		lease := op.LeaseMs()
		if lease < 0 {
			return r.fail(errLease)
		}
		res, err := r.node.CacheGet(r.ctx, key, time.Duration(min(lease, maxMillis))*time.Millisecond)
		if err != nil {
			return r.fail(err.Error())
		}
		state := cacheState(res.State)
		if res.State == node.CacheMiss || res.State == node.CacheWait {
			schema.ResultStart(r.b)
			schema.ResultAddCacheState(r.b, state)
			schema.ResultAddToken(r.b, res.Token)
			return schema.ResultEnd(r.b)
		}
		return r.value(res.Value, state, res.Token)
	case schema.OpKindThrottle:
		return r.throttle(key, op)
	case schema.OpKindSet:
		// Any negative TTL is refused by the node; clamp it so the
		// multiplication cannot wrap it to a valid one.
		ttl := max(min(op.TtlMs(), maxMillis), -1)
		if err := r.node.Set(r.ctx, key, op.ValueBytes(), time.Duration(ttl)*time.Millisecond); err != nil {
			return r.fail(err.Error())
		}
		return r.ok()
	case schema.OpKindAuth:
		return r.auth(op.KeyBytes(), op.ValueBytes())
	}
	return r.fail(errUnknownOpFmt + strconv.Itoa(int(kind)))
}

// cacheState maps the node's cache states to the schema's.
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

// throttle is RL.TAKE: the parameters are checked as RL.TAKE checks them,
// with its error texts, and the node decides.
func (r *runner) throttle(key string, op *schema.Op) flatbuffers.UOffsetT {
	var args schema.ThrottleArgs
	var limit, period, burst, cost int64
	if op.Throttle(&args) != nil {
		limit, period, burst, cost = args.Limit(), args.PeriodMs(), args.Burst(), args.Cost()
	}
	if burst == 0 {
		burst = limit
	}
	if _, err := limiter.NewTake(limit, period, burst, cost); err != nil {
		return r.fail(err.Error())
	}
	res, err := r.node.Throttle(r.ctx, key, node.Limit{Rate: limit, Period: time.Duration(period) * time.Millisecond, Burst: burst}, cost)
	if err != nil {
		return r.fail(err.Error())
	}
	retry := int64(-1)
	if !res.Allowed {
		retry = ceilMillis(res.RetryAfter)
	}
	b := r.b
	schema.ResultStart(b)
	schema.ResultAddDecision(b, schema.CreateDecision(b, !res.Allowed, res.Limit, res.Remaining, retry, ceilMillis(res.ResetAfter)))
	return schema.ResultEnd(b)
}

// ceilMillis rounds a duration up to whole milliseconds, as RL.TAKE does.
func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// auth runs AUTH in the connection's node session, so that the password is
// checked exactly as on the RESP port, against requirepass as it is now.
func (r *runner) auth(user, pass []byte) flatbuffers.UOffsetT {
	args := append(r.args[:0], authCommand)
	if len(user) > 0 {
		args = append(args, user)
	}
	args = append(args, pass)
	r.reply = authReply{}
	r.sess.Exec(&r.reply, args)
	r.authed = r.sess.Authenticated()
	if r.reply.err != "" {
		return r.fail(r.reply.err)
	}
	return r.ok()
}

// value returns a result holding v, unless v would make the response larger
// than the frame limit: then the result is an error.
func (r *runner) value(v []byte, state schema.CacheState, token uint64) flatbuffers.UOffsetT {
	b := r.b
	if int(b.Offset())+len(v) > r.maxFrame {
		return r.fail(string(errResponseTooLarge))
	}
	vec := b.CreateByteVector(v)
	schema.ResultStart(b)
	schema.ResultAddValue(b, vec)
	schema.ResultAddCacheState(b, state)
	schema.ResultAddToken(b, token)
	return schema.ResultEnd(b)
}

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

// borrow views b as a string without copying. The node's Go API reads the
// key during the call and keeps no reference to it (it stores a copy), so
// the string is never seen after the frame it points into is reused.
func borrow(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// authCommand is the name AUTH runs under.
var authCommand = []byte("AUTH")

// authReply is the node.Writer AUTH replies to: it keeps the error, if any.
type authReply struct{ err string }

var _ node.Writer = (*authReply)(nil)

func (w *authReply) Error(msg string)        { w.err = msg }
func (w *authReply) SimpleString(string)     {}
func (w *authReply) Int(int64)               {}
func (w *authReply) Bulk([]byte)             {}
func (w *authReply) BulkString(string)       {}
func (w *authReply) Null()                   {}
func (w *authReply) NullArray()              {}
func (w *authReply) Array(int)               {}
func (w *authReply) Map(int)                 {}
func (w *authReply) Set(int)                 {}
func (w *authReply) Double(float64)          {}
func (w *authReply) Bool(bool)               {}
func (w *authReply) Verbatim(string, []byte) {}
func (w *authReply) Push(int)                {}
func (w *authReply) SetProtocol(int)         {}
