package limiter

// Reply is the five-integer answer of CL.THROTTLE and RL.TAKE, in the
// command's own units (seconds for CL.THROTTLE, milliseconds for RL.TAKE).
type Reply struct {
	Limited    bool  // the request was refused
	Limit      int64 // the bucket's capacity
	Remaining  int64 // whole tokens left
	RetryAfter int64 // until the request would be admitted; -1 when it was
	ResetAfter int64 // until the bucket is full again
}

// Ints returns the reply as the array the commands send:
// [limited (0 or 1), limit, remaining, retry_after, reset_after].
func (r Reply) Ints() [5]int64 {
	var limited int64
	if r.Limited {
		limited = 1
	}
	return [5]int64{limited, r.Limit, r.Remaining, r.RetryAfter, r.ResetAfter}
}
