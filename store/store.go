package store

import (
	"errors"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
)

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

var policyNames = [...]string{
	AllKeysLFU:     "allkeys-lfu",
	AllKeysLRU:     "allkeys-lru",
	AllKeysRandom:  "allkeys-random",
	VolatileLFU:    "volatile-lfu",
	VolatileLRU:    "volatile-lru",
	VolatileRandom: "volatile-random",
	VolatileTTL:    "volatile-ttl",
	NoEviction:     "noeviction",
}

// ErrPolicy is returned by ParsePolicy for a name that is no policy.
var ErrPolicy = errors.New("store: unknown eviction policy")

// ParsePolicy maps a Redis policy name ("allkeys-lfu", "noeviction", ...) to a Policy.
// Case is ignored, as Redis's CONFIG SET ignores it.
func ParsePolicy(name string) (Policy, error) {
	for p, n := range policyNames {
		if strings.EqualFold(name, n) {
			return Policy(p), nil
		}
	}
	return 0, ErrPolicy
}

// String returns the Redis name of p.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// volatile reports whether p evicts only keys with an expiry.
func (p Policy) volatile() bool { return p >= VolatileLFU && p <= VolatileTTL }

// DefaultShards is the number of shards of a zero Config.
const DefaultShards = 256

// MaxShards bounds Config.Shards, so that a Locks is a fixed bitmap.
const MaxShards = 1024

// Config sets up a Store. The zero value is usable: 256 shards, no memory
// limit, AllKeysLFU, the system clock, every key in slot 0.
//
// More shards mean less lock contention and smaller pauses when a shard's
// table grows, at the cost of a few hundred bytes each and of whole-keyspace
// calls (Scan, Flush, LockAll) touching more locks. Shards is rounded up to a
// power of two and capped at MaxShards.
type Config struct {
	Shards    int   // power of two
	MaxMemory int64 // bytes of accounted memory; 0 = unlimited
	Policy    Policy
	Clock     Clock
	Slot      func(key []byte) uint16 // the cluster slot stored with each entry
	// OnRemove, when set, is called with the key of every entry the store drops
	// by itself (expiry, eviction), under the shard lock: it must not call the store.
	// key is valid only during the call.
	OnRemove func(key []byte)
}

// Stats are the store's counters.
type Stats struct {
	Keys    int64 // live records (placeholders excluded), expired-but-unswept included
	Expires int64 // keys with a TTL
	Memory  int64 // accounted bytes (what MaxMemory is compared with)
	Evicted int64
	Expired int64
}

// Store is a node's local key space.
//
// Memory accounting: each entry is charged its record's slot (the size class
// of header + cache metadata + key + value, or the allocation of a large
// record) plus entryCost (the 32-byte entry and its share of the index
// table). Free slots kept in the arenas and empty pages are not charged; the
// memory benchmark compares the two.
type Store struct {
	shards   []shard
	shift    uint // shard of a hash = hash >> shift
	clock    Clock
	slot     func([]byte) uint16
	slotKeys []atomic.Int32 // keys per slot, with Config.Slot
	onRemove func([]byte)

	maxMem  atomic.Int64
	policy  atomic.Uint32
	mem     atomic.Int64 // accounted bytes, all shards
	evicted atomic.Int64
	expired atomic.Int64

	expireNext atomic.Uint32 // the next shard ExpireCycle visits
	evictNext  atomic.Uint32 // the next shard eviction samples besides the writer's own
}

// New returns an empty store.
func New(cfg Config) *Store {
	n := cfg.Shards
	if n <= 0 {
		n = DefaultShards
	}
	n = min(1<<bits.Len(uint(n-1)), MaxShards)
	s := &Store{
		shards:   make([]shard, n),
		shift:    uint(64 - bits.TrailingZeros(uint(n))),
		clock:    cfg.Clock,
		slot:     cfg.Slot,
		onRemove: cfg.OnRemove,
	}
	if cfg.Slot != nil {
		s.slotKeys = make([]atomic.Int32, 1<<16)
	}
	if s.clock == nil {
		s.clock = NewSystemClock()
	}
	seed := rand.Uint64()
	for i := range s.shards {
		s.shards[i].init(seed + uint64(i)*0x9E3779B97F4A7C15)
		s.shards[i].slotKeys = s.slotKeys
	}
	s.maxMem.Store(max(cfg.MaxMemory, 0))
	s.policy.Store(uint32(cfg.Policy))
	// The shards' blocks off the heap go back to the system with the Store.
	runtime.AddCleanup(s, func(shards []shard) {
		for i := range shards {
			shards[i].release()
		}
	}, s.shards)
	return s
}

// Now returns the store clock's time in Unix milliseconds.
func (s *Store) Now() int64 { return s.clock.Now() / 1e6 }

// shardOf returns the index of the shard of a key hash: its top bits, so that
// the low 32 bits, which the shard's table uses, stay independent of it.
func (s *Store) shardOf(hash uint64) int { return int(hash >> s.shift) }

// SlotLen returns the number of keys in slot (expired ones not removed yet
// included, as in Len), or 0 without Config.Slot. It takes no lock.
func (s *Store) SlotLen(slot uint16) int {
	if s.slotKeys == nil {
		return 0
	}
	return int(s.slotKeys[slot].Load())
}

// Len returns the number of live keys. It reads counters and takes no lock.
func (s *Store) Len() int {
	var n int64
	for i := range s.shards {
		n += s.shards[i].keys.Load()
	}
	return int(n)
}

// Flush removes every key. It does not call OnRemove. Shards not held in
// locks are locked one at a time (see Scan about partial Locks).
func (s *Store) Flush(locks *Locks) {
	for i := range s.shards {
		sh := &s.shards[i]
		locked := s.acquire(i, locks)
		if s.slotKeys != nil {
			for idx := range sh.nEntries {
				if e := sh.entry(idx); e.flags&flagFree == 0 {
					sh.count(e, -1)
				}
			}
		}
		s.mem.Add(-sh.mem)
		sh.reset()
		if locked {
			sh.mu.Unlock()
		}
	}
}

// Stats returns the store's counters. It takes no lock, so with writes going
// on the fields are each current but not a snapshot of one instant.
func (s *Store) Stats() Stats {
	st := Stats{
		Memory:  s.mem.Load(),
		Evicted: s.evicted.Load(),
		Expired: s.expired.Load(),
	}
	for i := range s.shards {
		st.Keys += s.shards[i].keys.Load()
		st.Expires += s.shards[i].expires.Load()
	}
	return st
}

// Memory returns the accounted bytes: Stats().Memory without summing the
// shards' key counters, for a check on every command.
func (s *Store) Memory() int64 { return s.mem.Load() }

// SetMaxMemory changes the memory limit, evicting at once if needed (unless
// the policy is noeviction: writes that grow memory then fail with ErrOOM).
// It locks one shard at a time and reaches others only with TryLock, so it
// may be called while other goroutines hold Locks.
func (s *Store) SetMaxMemory(bytes int64) {
	s.maxMem.Store(max(bytes, 0))
	if bytes <= 0 || s.policyNow() == NoEviction {
		return
	}
	now := s.Now()
	for s.mem.Load() > bytes {
		progress := false
		for i := range s.shards {
			if s.mem.Load() <= bytes {
				return
			}
			sh := &s.shards[i]
			sh.mu.Lock()
			if s.evictOne(sh, i, nil, now) {
				progress = true
			}
			sh.mu.Unlock()
		}
		if !progress {
			return
		}
	}
}

// SetPolicy changes the eviction policy.
func (s *Store) SetPolicy(p Policy) { s.policy.Store(uint32(p)) }

func (s *Store) policyNow() Policy { return Policy(s.policy.Load()) }

// slotOf is the cluster slot of a new entry.
func (s *Store) slotOf(key []byte) uint16 {
	if s.slot == nil {
		return 0
	}
	return s.slot(key)
}

// acquire locks shard i unless locks holds it, and reports whether it did.
func (s *Store) acquire(i int, locks *Locks) bool {
	if locks.has(i) {
		return false
	}
	s.shards[i].mu.Lock()
	return true
}

// remove deletes entry idx of sh (whose key hashes to tag in its low bits)
// and gives back its memory.
func (s *Store) remove(sh *shard, idx uint32, tag uint32) {
	e := sh.entry(idx)
	sh.unlink(tag, idx)
	sh.count(e, -1)
	cost := entryCost + int64(sh.arena.capOf(e.class, e.loc))
	sh.mem -= cost
	s.mem.Add(-cost)
	sh.arena.release(e.class, e.loc)
	sh.freeEntry(idx)
}
