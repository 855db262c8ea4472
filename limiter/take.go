package limiter

import "math"

// Take is a validated RL.TAKE request: limit tokens per period
// milliseconds, a bucket of burst tokens, and the cost of this call.
//
// The emission interval is period*1e6/limit nanoseconds, truncated as
// CL.THROTTLE truncates it, so limit tokens come back within each period
// (at most one nanosecond per token early). retry_after and reset_after are
// rounded up to the next whole millisecond whenever they have any fraction,
// so a client that waits retry_after is admitted; remaining is the exact
// nanosecond quotient. The reply's limit is the capacity, burst.
type Take struct {
	limit Limit
	cost  int64
}

// NewTake validates RL.TAKE's parameters: limit, period and burst must be
// positive, cost not negative and at most burst, and period/limit at least
// one nanosecond, with period/limit*burst within 292 years.
func NewTake(limit, period, burst, cost int64) (Take, error) {
	switch {
	case limit <= 0:
		return Take{}, ErrTakeLimit
	case period <= 0:
		return Take{}, ErrTakePeriod
	case burst <= 0:
		return Take{}, ErrTakeBurst
	case cost < 0:
		return Take{}, ErrTakeCost
	case period > math.MaxInt64/1_000_000:
		return Take{}, ErrTakeRange
	}
	interval := period * 1e6 / limit
	if interval == 0 {
		return Take{}, ErrTakeRate
	}
	l, err := NewLimit(interval, burst)
	if err != nil {
		return Take{}, ErrTakeRange
	}
	if cost > burst {
		return Take{}, ErrCostAboveBurst
	}
	return Take{limit: l, cost: cost}, nil
}

// The options of RL.TAKE, in the order of NewTake's parameters.
const (
	optLimit = iota
	optPeriod
	optBurst
	optCost
)

var takeOptions = [...]string{optLimit: "LIMIT", optPeriod: "PERIOD", optBurst: "BURST", optCost: "COST"}

// ParseTake parses the arguments of RL.TAKE that follow the key: LIMIT n
// PERIOD ms [BURST b] [COST c], options in any order and any letter case,
// BURST defaulting to n and COST to 1. Integers are read as Redis reads them
// (no sign but '-', no leading zeros). An unknown, repeated or valueless
// option is ErrSyntax, a bad integer ErrNotInteger, a missing LIMIT or
// PERIOD ErrTakeArgs; then NewTake's checks apply. It does not allocate.
func ParseTake(args [][]byte) (Take, error) {
	var v [len(takeOptions)]int64
	var seen [len(takeOptions)]bool
	for i := 0; i < len(args); i += 2 {
		opt := -1
		for o, name := range takeOptions {
			if equalFoldUpper(args[i], name) {
				opt = o
				break
			}
		}
		if opt < 0 || seen[opt] || i+1 == len(args) {
			return Take{}, ErrSyntax
		}
		n, ok := parseRedisInt(args[i+1])
		if !ok {
			return Take{}, ErrNotInteger
		}
		v[opt], seen[opt] = n, true
	}
	if !seen[optLimit] || !seen[optPeriod] {
		return Take{}, ErrTakeArgs
	}
	if !seen[optBurst] {
		v[optBurst] = v[optLimit]
	}
	if !seen[optCost] {
		v[optCost] = 1
	}
	return NewTake(v[optLimit], v[optPeriod], v[optBurst], v[optCost])
}

// Apply runs the request against the bucket in state s at now (Unix ns) and
// returns the reply, in milliseconds, and the core's decision (what to store).
func (t Take) Apply(s State, now int64) (Reply, Decision) {
	d := t.limit.Decide(s, t.cost, now)
	r := Reply{
		Limited:    d.Limited,
		Limit:      t.limit.capacity,
		Remaining:  d.Remaining,
		RetryAfter: -1,
		ResetAfter: ceilMillis(d.ResetAfter),
	}
	if d.RetryAfter >= 0 {
		r.RetryAfter = ceilMillis(d.RetryAfter)
	}
	return r, d
}

// ceilMillis converts non-negative nanoseconds to milliseconds, rounding up.
func ceilMillis(ns int64) int64 {
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return ms
}

// parseRedisInt parses b as Redis's string2ll does: "0", or an optional '-'
// followed by digits without a leading zero, within int64.
func parseRedisInt(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] == '0' {
		return 0, false
	}
	return parseDigits(b, neg)
}

// equalFoldUpper reports whether b equals the upper-case ASCII word upper,
// ignoring the case of b.
func equalFoldUpper(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}
