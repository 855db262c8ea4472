package store

import "errors"

// Clock returns the current time in Unix nanoseconds. It must never go
// backwards within a process (SystemClock derives it from the monotonic clock).
type Clock interface{ Now() int64 }

// Kind tags what a record holds.
type Kind uint8

const (
	// KindNone marks a placeholder: a record that carries only cache metadata
	// (a lease handed out on a miss). It does not exist for the keyspace: Exists
	// reports false, and Len, Scan and RandomKey skip it.
	KindNone Kind = iota
	// KindString is a plain value, the Redis string type.
	KindString
	// KindLimiter is a rate-limiter bucket whose value the limiter package encodes.
	KindLimiter
)

// Cache is the stale-while-revalidate metadata of an entry. Times are Unix
// milliseconds; zero means unset.
type Cache struct {
	FreshUntil int64  // after this the value is stale (until the hard expiry)
	LeaseToken uint64 // the outstanding lease, 0 when none
	LeaseUntil int64  // when the outstanding lease lapses
}

// ErrOOM is returned by writes that would exceed MaxMemory when nothing can be
// evicted (policy noeviction, or no candidate left).
var ErrOOM = errors.New("store: out of memory")

// ErrTooLarge is returned by writes of a key or value larger than the store accepts.
var ErrTooLarge = errors.New("store: value too large")
