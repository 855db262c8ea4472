package node

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/limiter"
	"github.com/sluicedb/sluice/store"
)

// Rate limiting: CL.THROTTLE (redis-cell's command and replies) and RL.TAKE
// (the millisecond form). A bucket is a store record of KindLimiter holding
// the GCRA state; each decision is one atomic read-modify-write of it under
// its shard lock, made with the node's monotonic clock, so concurrent callers
// never over-admit and a wall-clock step back never refills a bucket.

func init() {
	register(
		// Arity -1: redis-cell answers every wrong arity, even a missing key,
		// with its own usage error, and so does Sluice.
		&Command{Name: "cl.throttle", Arity: -1, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "ratelimit", Since: "7.0.0", Summary: "Takes tokens from a GCRA rate-limit bucket, as redis-cell's CL.THROTTLE: [limited, limit, remaining, retry_after_s, reset_after_s].", Handler: cmdThrottle},
		&Command{Name: "rl.take", Arity: -6, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "ratelimit", Since: "7.0.0", Summary: "Takes tokens from a GCRA rate-limit bucket: LIMIT n PERIOD ms [BURST b] [COST c]; replies [limited, limit, remaining, retry_after_ms, reset_after_ms].", Handler: cmdTake},
	)
}

// rateStats count decisions by command: [0] allowed, [1] limited.
type rateStats struct {
	throttle [2]atomic.Int64
	take     [2]atomic.Int64
	api      [2]atomic.Int64
}

func cmdThrottle(c *Client, args [][]byte) {
	if len(args) < 5 || len(args) > 6 {
		c.err(string(limiter.ErrThrottleUsage))
		return
	}
	p, err := limiter.ParseThrottle(args[2:])
	if err != nil {
		c.err(err.Error())
		return
	}
	rateLimit(c, args[1], p, &c.n.rates.throttle)
}

func cmdTake(c *Client, args [][]byte) {
	p, err := limiter.ParseTake(args[2:])
	if err != nil {
		c.err(err.Error())
		return
	}
	rateLimit(c, args[1], p, &c.n.rates.take)
}

// applier is a validated limiter request: Throttle or Take.
type applier interface {
	Apply(s limiter.State, now int64) (limiter.Reply, limiter.Decision)
}

// rateLimit runs one decision on the bucket at key and replies with the five
// integers. It is generic so that the request stays on the stack.
func rateLimit[A applier](c *Client, key []byte, req A, counts *[2]atomic.Int64) {
	var h store.Handle
	c.open(&h, key)
	defer h.Close()
	st, ok := c.bucket(&h)
	if !ok {
		return
	}
	reply, d := req.Apply(st, c.n.clock.Now())
	if d.Write {
		var buf [limiter.StateSize]byte
		if err := h.Set(d.Next.Append(buf[:0]), store.KindLimiter, d.Next.ExpireAtMillis()); err != nil {
			c.writeErr(err)
			return
		}
	}
	if reply.Limited {
		counts[1].Add(1)
	} else {
		counts[0].Add(1)
	}
	ints := reply.Ints()
	c.w.Array(len(ints))
	for _, v := range ints {
		c.w.Int(v)
	}
}

// bucket reads the limiter state of an open key: the zero state when absent,
// WRONGTYPE for another kind of value.
func (c *Client) bucket(h *store.Handle) (limiter.State, bool) {
	if !h.Exists() {
		return limiter.State{}, true
	}
	if h.Kind() != store.KindLimiter {
		c.err(errWrongType)
		return limiter.State{}, false
	}
	st, err := limiter.Decode(h.Value())
	if err != nil {
		c.err(err.Error())
		return limiter.State{}, false
	}
	return st, true
}

// Limit is a rate limit for Throttle: Rate tokens every Period, with room for
// Burst tokens (Rate when 0).
type Limit struct {
	Rate   int64
	Period time.Duration
	Burst  int64
}

// ThrottleResult is one rate-limit decision.
type ThrottleResult struct {
	// Allowed reports that the tokens were taken.
	Allowed bool
	// Limit is the bucket's capacity.
	Limit int64
	// Remaining is how many tokens are left.
	Remaining int64
	// RetryAfter is how long until the same request would be allowed; 0 when it was.
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}

// Throttle takes cost tokens from the bucket at key, deciding locally with the
// node's clock exactly as RL.TAKE does (the buckets are the same records), but
// with no parsing, no reply encoding and nanosecond durations. Cost 0 reads.
func (n *Node) Throttle(ctx context.Context, key string, l Limit, cost int64) (ThrottleResult, error) {
	if err := ctx.Err(); err != nil {
		return ThrottleResult{}, err
	}
	burst := l.Burst
	if burst == 0 {
		burst = l.Rate
	}
	if l.Rate <= 0 || l.Period <= 0 {
		return ThrottleResult{}, limiter.ErrLimit
	}
	lim, err := limiter.NewLimit(int64(l.Period)/l.Rate, burst)
	if err != nil {
		return ThrottleResult{}, err
	}
	if cost > burst {
		return ThrottleResult{}, limiter.ErrCostAboveBurst
	}
	if n.remote(key) {
		return n.throttleRemote(ctx, key, l, burst, cost)
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	var st limiter.State
	if h.Exists() {
		if h.Kind() != store.KindLimiter {
			return ThrottleResult{}, Error(errWrongType)
		}
		if st, err = limiter.Decode(h.Value()); err != nil {
			return ThrottleResult{}, err
		}
	}
	d := lim.Decide(st, cost, n.clock.Now())
	if d.Write {
		var buf [limiter.StateSize]byte
		if err := h.Set(d.Next.Append(buf[:0]), store.KindLimiter, d.Next.ExpireAtMillis()); err != nil {
			return ThrottleResult{}, err
		}
	}
	r := ThrottleResult{Allowed: !d.Limited, Limit: burst, Remaining: d.Remaining, ResetAfter: time.Duration(d.ResetAfter)}
	if d.Limited {
		n.rates.api[1].Add(1)
		if d.RetryAfter >= 0 {
			r.RetryAfter = time.Duration(d.RetryAfter)
		}
	} else {
		n.rates.api[0].Add(1)
	}
	return r, nil
}

// throttleRemote decides at the key's owner with RL.TAKE, whose times are
// whole milliseconds.
func (n *Node) throttleRemote(ctx context.Context, key string, l Limit, burst, cost int64) (ThrottleResult, error) {
	v, err := n.Do(ctx, "RL.TAKE", key, "LIMIT", l.Rate, "PERIOD", max(l.Period.Milliseconds(), 1), "BURST", burst, "COST", cost)
	if err != nil {
		return ThrottleResult{}, replyError(err)
	}
	r := v.([]any)
	res := ThrottleResult{
		Allowed:    r[0].(int64) == 0,
		Limit:      r[1].(int64),
		Remaining:  r[2].(int64),
		ResetAfter: time.Duration(r[4].(int64)) * time.Millisecond,
	}
	if retry := r[3].(int64); retry > 0 {
		res.RetryAfter = time.Duration(retry) * time.Millisecond
	}
	return res, nil
}

// SetHeaders writes the result as the IETF RateLimit header fields
// (RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset in whole seconds,
// rounded up) and, when the request was refused, Retry-After.
func (r ThrottleResult) SetHeaders(h http.Header) {
	h.Set("RateLimit-Limit", strconv.FormatInt(r.Limit, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(r.Remaining, 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.ResetAfter), 10))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(r.RetryAfter), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
