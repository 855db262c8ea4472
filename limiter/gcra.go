// Package limiter is Sluice's rate-limit arithmetic: GCRA, the generic cell
// rate algorithm, as pure functions from (stored state, parameters, now) to
// (decision, new state). It does no I/O, keeps no buckets and reads no clock.
//
// GCRA is a token bucket kept as one timestamp per key, the theoretical
// arrival time (TAT): the instant at which the bucket will be full again. A
// request of cost c moves the TAT c emission intervals (T) later and is
// admitted when the new TAT stays within the delay tolerance (T times the
// capacity) of now. Over any window of length w the admitted cost never
// exceeds capacity + w/T, whatever the order of the calls.
//
// A bucket is an ordinary store record. The node runs one decision inside the
// store's atomic read-modify-write:
//
//	p, err := limiter.ParseThrottle(args) // or ParseTake; args follow the key
//	// on err: reply err.Error() as an error
//	st, err := limiter.Decode(h.Value()) // absent key: the zero State; other kinds: WRONGTYPE
//	reply, d := p.Apply(st, now)         // now in Unix nanoseconds
//	if d.Write {
//		var buf [limiter.StateSize]byte
//		h.Set(d.Next.Append(buf[:0]), store.KindLimiter, d.Next.ExpireAtMillis())
//	}
//	// reply: an array of the five reply.Ints()
//
// A record is written only when tokens were taken, and expires when its bucket
// would be full again, so idle buckets cost no memory. Nothing here allocates.
//
// Times are int64 Unix nanoseconds. A now earlier than a previous call's (the
// clock stepped back, or a new owner's clock is behind) only makes the stored
// TAT further away, so it never grants extra tokens; the bucket stays that much
// further from full until the clock catches up, which is why nodes pass a
// clock that does not go back within a process. Arithmetic that could leave int64 is refused: parameters
// whose tolerance exceeds 292 years are errors, and a grant whose TAT would
// pass the year 2262 is denied.
//
// Two command front ends share the core: CL.THROTTLE, which answers exactly as
// redis-cell does (see Throttle), and RL.TAKE, Sluice's millisecond form (see
// Take). gcra.lua, exported as Script, is CL.THROTTLE as a Redis Lua script,
// the baseline Sluice is measured against.
package limiter

import (
	"math"
	"math/bits"
)

// Limit is the GCRA parameters of a bucket: one token every interval
// nanoseconds, at most capacity tokens banked. The zero Limit refuses every
// request that takes tokens.
type Limit struct {
	interval  int64 // T, the emission interval, ns per token
	capacity  int64 // tokens the bucket holds
	tolerance int64 // interval*capacity: how far the TAT may run ahead of now
}

// NewLimit returns the Limit of one token every interval nanoseconds with
// room for capacity tokens. Both must be at least 1 (ErrLimit), and their
// product, the delay tolerance, must fit in int64 nanoseconds (ErrLimitRange).
func NewLimit(interval, capacity int64) (Limit, error) {
	if interval <= 0 || capacity <= 0 {
		return Limit{}, ErrLimit
	}
	if hi, lo := bits.Mul64(uint64(interval), uint64(capacity)); hi != 0 || lo > math.MaxInt64 {
		return Limit{}, ErrLimitRange
	}
	return Limit{interval: interval, capacity: capacity, tolerance: interval * capacity}, nil
}

// Interval returns the emission interval: nanoseconds per token.
func (l Limit) Interval() int64 { return l.interval }

// Capacity returns how many tokens the bucket holds.
func (l Limit) Capacity() int64 { return l.capacity }

// Decision is the outcome of one request against a bucket. Durations are in
// nanoseconds; the front ends convert them to their reply units.
type Decision struct {
	// Limited reports that the request was refused and nothing was taken.
	Limited bool
	// Remaining is the number of whole tokens left after this request.
	Remaining int64
	// RetryAfter is how long until the same request would be admitted: -1
	// when it was admitted, and when it can never be (cost above capacity).
	RetryAfter int64
	// ResetAfter is how long until the bucket is full again.
	ResetAfter int64
	// Next is the bucket's new state.
	Next State
	// Write reports that Next differs from the state passed in and must be
	// stored, with the expiry Next.ExpireAtMillis(). It is false for refused
	// requests and for cost 0, which leave the bucket as it was.
	Write bool
}

// Decide takes cost tokens from the bucket in state s at time now (Unix ns).
// A cost of 0 only reads; a negative cost counts as 0. It never fails: bad
// parameters are caught when the Limit is made.
func (l Limit) Decide(s State, cost, now int64) Decision {
	cost = max(cost, 0)
	// ahead is how far the TAT runs ahead of now; a TAT in the past is a
	// full bucket, exactly as an absent record is.
	var ahead int64
	if s.TAT > now {
		ahead = s.TAT - now
		if ahead < 0 { // the subtraction overflowed: now is far in the past
			ahead = math.MaxInt64
		}
	}
	d := Decision{RetryAfter: -1, ResetAfter: ahead, Next: s}
	switch {
	case cost > l.capacity:
		// Never admissible; checked first so cost*interval cannot overflow.
		d.Limited = true
	case ahead > l.tolerance-cost*l.interval:
		// cost*interval <= tolerance here, and ahead > tolerance-increment
		// is ahead+increment > tolerance written so that it cannot overflow.
		d.Limited = true
		d.RetryAfter = ahead - (l.tolerance - cost*l.interval)
	case cost == 0:
		// A read: admitted, nothing changes.
	case now > math.MaxInt64-(ahead+cost*l.interval):
		// The new TAT would pass the end of int64 time: refuse rather than
		// wrap around into a grant.
		d.Limited = true
	default:
		d.ResetAfter = ahead + cost*l.interval
		d.Next = State{TAT: now + d.ResetAfter}
		d.Write = true
	}
	if room := l.tolerance - d.ResetAfter; room > 0 {
		d.Remaining = room / l.interval
	}
	return d
}
