package store

// Policy is what the store evicts when a write would exceed MaxMemory.
type Policy uint8

// The eviction policies, named as Redis names them.
const (
	AllKeysLFU Policy = iota // default: sampled LFU with decay
	AllKeysLRU
	AllKeysRandom
	VolatileLFU
	VolatileLRU
	VolatileRandom
	VolatileTTL
	NoEviction
)

// ParsePolicy maps a Redis policy name ("allkeys-lfu", "noeviction", ...) to a Policy.
func ParsePolicy(name string) (Policy, error) { panic("unimplemented") }

// String returns the Redis name of p.
func (p Policy) String() string { panic("unimplemented") }

// Config sets up a Store. The zero value is usable: 256 shards, no memory
// limit, AllKeysLFU, the system clock, every key in slot 0.
type Config struct {
	Shards    int              // power of two
	MaxMemory int64            // bytes of accounted memory; 0 = unlimited
	Policy    Policy
	Clock     Clock
	Slot      func(key []byte) uint16 // the cluster slot stored with each entry
	// OnRemove, when set, is called with the key of every entry the store drops
	// by itself (expiry, eviction), under the shard lock: it must not call the store.
	OnRemove func(key []byte)
}

// Stats are the store's counters.
type Stats struct {
	Keys      int64 // live records (placeholders excluded), expired-but-unswept included
	Expires   int64 // keys with a TTL
	Memory    int64 // accounted bytes (what MaxMemory is compared with)
	Evicted   int64
	Expired   int64
}

// Store is a node's local key space.
type Store struct{}

// New returns an empty store.
func New(cfg Config) *Store { panic("unimplemented") }

// Now returns the store clock's time in Unix milliseconds.
func (s *Store) Now() int64 { panic("unimplemented") }

// Locks is a set of shard locks held together (see LockKeys).
type Locks struct{}

// LockKeys locks the shards of keys in a fixed order, so that operations on
// several keys are atomic. Pass l to Open and the keyspace calls; Unlock ends it.
func (s *Store) LockKeys(l *Locks, keys [][]byte) { panic("unimplemented") }

// LockAll locks every shard.
func (s *Store) LockAll(l *Locks) { panic("unimplemented") }

// Unlock releases what LockKeys or LockAll took.
func (l *Locks) Unlock() { panic("unimplemented") }

// Handle is one key opened for reading and writing. It holds the key's shard
// lock from Open to Close; slices it returns are valid until the next mutation
// through it or Close. A Handle may live on the caller's stack and be reused.
type Handle struct{}

// Open looks key up, expiring it lazily, and locks its shard unless locks holds it.
func (s *Store) Open(h *Handle, key []byte, locks *Locks) { panic("unimplemented") }

// Close releases the shard lock taken by Open.
func (h *Handle) Close() { panic("unimplemented") }

// Exists reports whether the key holds a live value (placeholders do not count).
func (h *Handle) Exists() bool { panic("unimplemented") }

// Kind returns the record's kind; KindNone when absent or a placeholder.
func (h *Handle) Kind() Kind { panic("unimplemented") }

// Value returns the stored value.
func (h *Handle) Value() []byte { panic("unimplemented") }

// ExpireAt returns the hard expiry in Unix ms, 0 when the key does not expire.
func (h *Handle) ExpireAt() int64 { panic("unimplemented") }

// Version changes on every write of the key; a key created again after a
// delete gets a version it never had. WATCH compares versions.
func (h *Handle) Version() uint64 { panic("unimplemented") }

// Cache returns the entry's stale-while-revalidate metadata, if it has any
// (placeholders included).
func (h *Handle) Cache() (Cache, bool) { panic("unimplemented") }

// Set stores val with kind and hard expiry (Unix ms, 0 = none), creating the
// key or replacing it and dropping any cache metadata.
func (h *Handle) Set(val []byte, kind Kind, expireAt int64) error { panic("unimplemented") }

// SetCache stores val as a string with cache metadata c.
func (h *Handle) SetCache(val []byte, expireAt int64, c Cache) error { panic("unimplemented") }

// UpdateCache changes the cache metadata of the key (creating a placeholder
// that expires at c.LeaseUntil when the key is absent) without touching the
// value or the version.
func (h *Handle) UpdateCache(c Cache) error { panic("unimplemented") }

// Append appends b to the value (creating the key) and returns the new length.
func (h *Handle) Append(b []byte) (int, error) { panic("unimplemented") }

// SetRange overwrites the value at offset with b, zero-padding, and returns the new length.
func (h *Handle) SetRange(offset int, b []byte) (int, error) { panic("unimplemented") }

// SetExpireAt changes the hard expiry (0 = persist) of an existing key.
func (h *Handle) SetExpireAt(ms int64) { panic("unimplemented") }

// Delete removes the key.
func (h *Handle) Delete() { panic("unimplemented") }

// Len returns the number of live keys.
func (s *Store) Len() int { panic("unimplemented") }

// Scan calls fn for up to about count entries from cursor and returns the next
// cursor, 0 when the iteration is complete. A key present for a whole
// iteration is returned at least once.
func (s *Store) Scan(cursor uint64, count int, locks *Locks, fn func(key []byte, kind Kind, expireAt int64)) uint64 {
	panic("unimplemented")
}

// RandomKey appends a random live key to dst.
func (s *Store) RandomKey(dst []byte, locks *Locks) ([]byte, bool) { panic("unimplemented") }

// Flush removes every key.
func (s *Store) Flush(locks *Locks) { panic("unimplemented") }

// Stats returns the store's counters.
func (s *Store) Stats() Stats { panic("unimplemented") }

// SetMaxMemory changes the memory limit, evicting at once if needed.
func (s *Store) SetMaxMemory(bytes int64) { panic("unimplemented") }

// SetPolicy changes the eviction policy.
func (s *Store) SetPolicy(p Policy) { panic("unimplemented") }

// ExpireCycle removes a bounded sample of expired keys and reports how many it removed.
func (s *Store) ExpireCycle() int { panic("unimplemented") }

// NewSystemClock returns a Clock that reads wall time once at creation and
// advances it with the monotonic clock, so it never steps backwards.
func NewSystemClock() Clock { panic("unimplemented") }

// ForEachInSlot calls fn for every live entry of slot (for hand-off); fn must
// not call the store.
func (s *Store) ForEachInSlot(slot uint16, fn func(key, val []byte, kind Kind, expireAt int64, c Cache, hasCache bool)) {
	panic("unimplemented")
}
