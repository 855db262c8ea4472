package limiter

// Error is an error reply as the node sends it to a client: the text starts
// with its Redis-style prefix (the first word, "ERR" or redis-cell's "Cell").
// The fixed ones are constants, so returning them allocates nothing and they
// compare with == and errors.Is.
type Error string

func (e Error) Error() string { return string(e) }

// Errors of the GCRA core and the record encoding.
const (
	// ErrLimit is returned by NewLimit for an interval or capacity below 1.
	ErrLimit Error = "ERR rate limit interval and capacity must be positive"
	// ErrLimitRange is returned by NewLimit when interval*capacity, the
	// bucket's delay tolerance, does not fit in int64 nanoseconds (292 years).
	ErrLimitRange Error = "ERR rate limit out of range: interval*capacity exceeds 292 years"
	// ErrCorrupt is returned by Decode for bytes that are not a record this
	// package wrote (wrong length or unknown version).
	ErrCorrupt Error = "ERR corrupt rate-limit record"
)

// Errors of CL.THROTTLE. redis-cell replies with the texts of its Rust errors
// wrapped twice, "Cell error: Store error: ...", so the error code a client
// sees is "Cell". The ones redis-cell has are reproduced byte for byte
// (ErrThrottleUsage, ErrZeroRate, and the integer error built by
// ParseThrottle); the others cover inputs redis-cell accepts and answers with
// nonsense, and keep the same prefix so clients that match it still do.
const (
	// ErrThrottleUsage is redis-cell's reply to a wrong number of arguments.
	ErrThrottleUsage Error = "Cell error: Store error: Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]"
	// ErrZeroRate is redis-cell's reply when count or period is 0, or when
	// period/count is under one nanosecond.
	ErrZeroRate Error = "Cell error: Store error: Zero rates are not supported"
	// ErrNegativeRate rejects a negative count or period (redis-cell runs with
	// a negative emission interval and grants everything).
	ErrNegativeRate Error = "Cell error: Store error: Negative rates are not supported"
	// ErrNegativeBurst rejects a negative max_burst (redis-cell denies every
	// request with a limit of 0 or less).
	ErrNegativeBurst Error = "Cell error: Store error: Negative max_burst is not supported"
	// ErrNegativeQuantity rejects a negative quantity (redis-cell would move
	// the bucket's clock back and hand out tokens).
	ErrNegativeQuantity Error = "Cell error: Store error: Negative quantity is not supported"
	// ErrThrottleRange rejects parameters whose arithmetic does not fit in
	// int64 nanoseconds (redis-cell wraps around): a period over 9223372036
	// seconds, or period/count*(max_burst+1) over 292 years.
	ErrThrottleRange Error = "Cell error: Store error: Rate limit is too large: period/count*(max_burst+1) exceeds 292 years"
)

// throttleNotInteger is the prefix of redis-cell's reply to an argument that
// is not a 64-bit integer; the argument follows it.
const throttleNotInteger = "Cell error: Store error: Couldn't parse as integer: "

// Errors of RL.TAKE, in Redis's own wording where Redis has one.
const (
	// ErrSyntax is Redis's reply to an unknown, repeated or dangling option.
	ErrSyntax Error = "ERR syntax error"
	// ErrNotInteger is Redis's reply to a value that is not a 64-bit integer.
	ErrNotInteger Error = "ERR value is not an integer or out of range"
	// ErrTakeArgs is the reply when LIMIT or PERIOD is missing.
	ErrTakeArgs Error = "ERR RL.TAKE needs LIMIT and PERIOD"
	// ErrTakeLimit is the reply to a LIMIT below 1.
	ErrTakeLimit Error = "ERR LIMIT must be positive"
	// ErrTakePeriod is the reply to a PERIOD below 1.
	ErrTakePeriod Error = "ERR PERIOD must be positive"
	// ErrTakeBurst is the reply to a BURST below 1.
	ErrTakeBurst Error = "ERR BURST must be positive"
	// ErrTakeCost is the reply to a negative COST.
	ErrTakeCost Error = "ERR COST must not be negative"
	// ErrCostAboveBurst is the reply to a COST larger than the bucket's
	// capacity: such a request could never be admitted, so it is refused as
	// an error rather than denied forever.
	ErrCostAboveBurst Error = "ERR COST is larger than the bucket capacity"
	// ErrTakeRate is the reply when PERIOD/LIMIT is under one nanosecond.
	ErrTakeRate Error = "ERR LIMIT per PERIOD is faster than one per nanosecond"
	// ErrTakeRange is the reply when PERIOD/LIMIT*BURST does not fit in
	// int64 nanoseconds (292 years).
	ErrTakeRange Error = "ERR PERIOD/LIMIT*BURST exceeds 292 years"
)
