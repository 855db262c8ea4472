package limiter

import "math"

// Throttle is a validated CL.THROTTLE request: max_burst+1 tokens, refilled
// at count per period seconds, and the quantity this call takes.
//
// It answers exactly as redis-cell (github.com/brandur/redis-cell, 0.5)
// does, down to its rounding:
//
//   - The emission interval is period*1e9/count nanoseconds computed in
//     float64 and truncated, as redis-cell computes it.
//   - retry_after and reset_after are the whole seconds plus one when the
//     fraction is at least one millisecond: redis-cell rounds up only when
//     the duration's millisecond part is non-zero, so 2.0005 s is 2 and a
//     refusal due in under 1 ms has retry_after 0.
//   - remaining is (tolerance-reset_after)/interval with both truncated to
//     whole microseconds first, as redis-cell divides them. When the interval
//     is not a whole number of microseconds this can report more tokens than
//     the bucket holds, as redis-cell does: by one at most for intervals of
//     milliseconds or more, by several for intervals of a few microseconds.
//   - A quantity above max_burst+1 is refused with retry_after -1; quantity
//     0 reads without taking.
//
// Where redis-cell misbehaves Sluice does not: negative arguments and
// parameters that overflow its arithmetic are errors (it runs with them,
// granting or refusing everything), remaining is never negative nor above
// the limit (redis-cell's microsecond division can exceed it), and for
// intervals under a microsecond, where redis-cell divides by zero and
// answers remaining 9223372036854775807, remaining is the nanosecond
// quotient.
type Throttle struct {
	limit    Limit
	quantity int64
}

// NewThrottle validates CL.THROTTLE's parameters. Every input redis-cell
// rejects gets its error, ErrZeroRate, first; inputs it accepts but cannot
// handle then get ErrNegativeRate, ErrNegativeBurst, ErrNegativeQuantity or
// ErrThrottleRange.
func NewThrottle(maxBurst, count, period, quantity int64) (Throttle, error) {
	if count == 0 || period == 0 {
		return Throttle{}, ErrZeroRate
	}
	// Periods beyond int64 nanoseconds are refused below; redis-cell
	// computes in 128 bits there, and its interval is never 0 for them.
	inRange := period <= math.MaxInt64/1_000_000_000 && period >= math.MinInt64/1_000_000_000
	var interval int64
	if inRange {
		interval = int64(float64(period*1e9) / float64(count))
		if interval == 0 {
			return Throttle{}, ErrZeroRate
		}
	}
	switch {
	case count < 0 || period < 0:
		return Throttle{}, ErrNegativeRate
	case !inRange:
		return Throttle{}, ErrThrottleRange
	case maxBurst < 0:
		return Throttle{}, ErrNegativeBurst
	case quantity < 0:
		return Throttle{}, ErrNegativeQuantity
	case maxBurst == math.MaxInt64:
		return Throttle{}, ErrThrottleRange
	}
	l, err := NewLimit(interval, maxBurst+1)
	if err != nil {
		return Throttle{}, ErrThrottleRange
	}
	return Throttle{limit: l, quantity: quantity}, nil
}

// ParseThrottle parses the arguments of CL.THROTTLE that follow the key:
// max_burst, count, period and an optional quantity (default 1). Integers are
// read as redis-cell reads them (Rust's i64 parsing: an optional sign, then
// decimal digits, leading zeros allowed), and a bad one is the Error
// "Cell error: Store error: Couldn't parse as integer: <arg>". Any other
// number of arguments is ErrThrottleUsage. It allocates only for that
// integer error.
//
// redis-cell answers every arity with ErrThrottleUsage, even a call with no
// key; a node that wants the same registers CL.THROTTLE with an arity that
// admits a missing key and replies ErrThrottleUsage itself.
func ParseThrottle(args [][]byte) (Throttle, error) {
	if len(args) != 3 && len(args) != 4 {
		return Throttle{}, ErrThrottleUsage
	}
	var v [4]int64
	v[3] = 1
	for i, a := range args {
		n, ok := parseCellInt(a)
		if !ok {
			return Throttle{}, throttleIntError(a)
		}
		v[i] = n
	}
	return NewThrottle(v[0], v[1], v[2], v[3])
}

// Apply runs the request against the bucket in state s at now (Unix ns) and
// returns the reply, in seconds with redis-cell's remaining, and the core's
// decision: what to store, and exact nanosecond figures.
func (t Throttle) Apply(s State, now int64) (Reply, Decision) {
	d := t.limit.Decide(s, t.quantity, now)
	r := Reply{
		Limited:    d.Limited,
		Limit:      t.limit.capacity,
		Remaining:  min(cellRemaining(t.limit.tolerance-d.ResetAfter, t.limit.interval), t.limit.capacity),
		RetryAfter: -1,
		ResetAfter: cellSeconds(d.ResetAfter),
	}
	if d.RetryAfter >= 0 {
		r.RetryAfter = cellSeconds(d.RetryAfter)
	}
	return r, d
}

// cellSeconds converts a non-negative duration to redis-cell's reply seconds:
// float seconds truncated (time's as_seconds_f64 cast to i64, which can round
// up past 104 days), plus one when the millisecond part is non-zero.
func cellSeconds(ns int64) int64 {
	sec, frac := ns/1e9, ns%1e9
	s := int64(float64(sec) + float64(frac)/1e9)
	if frac/1e6 > 0 {
		s++
	}
	return s
}

// cellRemaining is redis-cell's remaining: the room left in the tolerance
// divided by the interval, both truncated to microseconds and divided in
// float64. Intervals under 1 µs, where redis-cell divides by zero, use the
// nanosecond quotient instead.
func cellRemaining(room, interval int64) int64 {
	if room <= 0 {
		return 0
	}
	if interval < 1e3 {
		return room / interval
	}
	return int64(float64(room/1e3) / float64(interval/1e3))
}

// parseCellInt parses b as Rust's str::parse::<i64> does: an optional '+' or
// '-', then one or more ASCII digits, within int64.
func parseCellInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	return parseDigits(b, neg)
}

// parseDigits parses one or more decimal digits as a magnitude, negated when
// neg, and reports false on anything else or when it leaves int64.
func parseDigits(b []byte, neg bool) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var u uint64
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 || u > (limit-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		return int64(-u), true
	}
	return int64(u), true
}

// throttleIntError builds redis-cell's integer error for arg as Redis
// delivers it: the text stops at a NUL byte (it passes through a C string),
// trailing CR and LF are trimmed and inner ones become spaces, as Redis's
// error replies do.
func throttleIntError(arg []byte) error {
	for i, c := range arg {
		if c == 0 {
			arg = arg[:i]
			break
		}
	}
	for len(arg) > 0 && (arg[len(arg)-1] == '\r' || arg[len(arg)-1] == '\n') {
		arg = arg[:len(arg)-1]
	}
	msg := []byte(throttleNotInteger)
	for _, c := range arg {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		msg = append(msg, c)
	}
	return Error(msg)
}
