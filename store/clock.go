package store

import "time"

// systemClock is wall time read once, advanced by the monotonic clock.
type systemClock struct {
	wall  int64     // Unix ns at start
	start time.Time // carries the monotonic reading
}

// NewSystemClock returns a Clock that reads wall time once at creation and
// advances it with the monotonic clock, so it never steps backwards.
//
// The price is that it does not follow later corrections of the wall clock
// (NTP steps): expiry times drift from the system's by as much as the clock
// is corrected while the process runs.
func NewSystemClock() Clock {
	now := time.Now()
	return &systemClock{wall: now.UnixNano(), start: now}
}

// Now returns Unix nanoseconds.
func (c *systemClock) Now() int64 { return c.wall + int64(time.Since(c.start)) }
