package store

import (
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// Scan calls fn for up to about count entries from cursor and returns the next
// cursor, 0 when the iteration is complete. A key present for a whole
// iteration is returned at least once.
//
// The cursor is shard << 32 | entry index. Entry indexes never change while
// a key lives (records move, entries do not), so walking each shard's entries
// in index order sees every key that lives through the walk; a key created
// during it may or may not be seen, and a key deleted and created again may
// be seen twice. A call looks at no more than 10×count entries, so a sparse
// shard costs several short calls rather than one long one. Expired keys met
// on the way are removed (as Redis's SCAN does) and not returned;
// placeholders are skipped.
//
// fn runs under the shard's lock: it must not call the store, and key is
// valid only during the call. Shards held in locks are not locked again;
// others are locked one at a time. locks should be nil or hold every shard
// (LockAll): with a partial set, waiting for a shard below one it holds could
// deadlock with a LockKeys elsewhere. The same holds for Flush.
func (s *Store) Scan(cursor uint64, count int, locks *Locks, fn func(key []byte, kind Kind, expireAt int64)) uint64 {
	count = min(max(count, 1), 1<<30)
	si, idx := int(cursor>>32), uint32(cursor)
	emitted, budget := 0, 10*count
	now := s.Now()
	for ; si < len(s.shards); si, idx = si+1, 0 {
		if emitted >= count || budget <= 0 {
			return uint64(si) << 32
		}
		sh := &s.shards[si]
		locked := s.acquire(si, locks)
		for ; idx < sh.nEntries && emitted < count && budget > 0; idx++ {
			budget--
			e := sh.entry(idx)
			kind := Kind(e.flags & kindMask)
			if e.flags&flagFree != 0 || kind == KindNone {
				continue
			}
			if e.expireAt != 0 && now > e.expireAt && e.pins == 0 {
				s.drop(sh, idx, true)
				continue
			}
			fn(sh.key(e), kind, e.expireAt)
			emitted++
		}
		more := idx < sh.nEntries
		if locked {
			sh.mu.Unlock()
		}
		if more {
			return uint64(si)<<32 | uint64(idx)
		}
	}
	return 0
}

// Entry is one entry as ForEachInSlots reports it. Key and Value are valid
// only during the call.
type Entry struct {
	Key, Value []byte
	Kind       Kind  // KindNone for a placeholder (a lease on a missing key)
	ExpireAt   int64 // Unix ms, 0 for none
	Cache      Cache
	HasCache   bool
	Slot       uint16
}

// ForEachInSlots calls fn for every live entry, placeholders included, whose
// slot in reports true (for replication and hand-off). It walks one shard at
// a time under the shard's lock, so fn sees each entry as it is at that
// moment and must not call the store; after each shard, with no lock held,
// it calls between when that is not nil (to pace the caller). One call is
// one pass over the store (about 2 ms per million keys) however many slots
// in selects. Expired entries are skipped.
func (s *Store) ForEachInSlots(in func(slot uint16) bool, fn func(e *Entry), between func()) {
	now := s.Now()
	var ent Entry
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for idx := range sh.nEntries {
			e := sh.entry(idx)
			if e.flags&flagFree != 0 || (e.expireAt != 0 && now > e.expireAt) || !in(e.slot) {
				continue
			}
			rec := sh.rec(e)
			off := keyOff(e)
			klen, vlen := recKeyLen(rec), recValLen(rec)
			ent = Entry{
				Key:      rec[off : off+klen : off+klen],
				Value:    rec[off+klen : off+klen+vlen : off+klen+vlen],
				Kind:     Kind(e.flags & kindMask),
				ExpireAt: e.expireAt,
				HasCache: e.flags&flagCache != 0,
				Slot:     e.slot,
			}
			if ent.HasCache {
				ent.Cache = recCache(rec)
			}
			fn(&ent)
		}
		sh.mu.Unlock()
		if between != nil {
			between()
		}
	}
}

// DeleteSlots removes every entry whose slot in reports true (a node that
// no longer holds those slots, FLUSHALL on a cluster node), reporting the
// keys to OnRemove, and returns how many keys it removed. Shards not held in
// locks are locked one at a time.
func (s *Store) DeleteSlots(in func(slot uint16) bool, locks *Locks) int {
	removed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		locked := s.acquire(i, locks)
		for idx := range sh.nEntries {
			e := sh.entry(idx)
			if e.flags&flagFree != 0 || !in(e.slot) {
				continue
			}
			key := sh.key(e)
			if Kind(e.flags&kindMask) != KindNone {
				removed++
				if s.onRemove != nil {
					s.onRemove(key)
				}
			}
			s.remove(sh, idx, uint32(xxhash.Sum64(key)))
		}
		if locked {
			sh.mu.Unlock()
		}
	}
	return removed
}

// Restore writes an entry as ForEachInSlots reported it (on another node):
// its kind, value, expiry and cache metadata, replacing whatever the key
// held. A placeholder (KindNone) keeps only its cache metadata.
func (h *Handle) Restore(e *Entry) error {
	if e.Kind == KindNone {
		h.Delete()
		return h.UpdateCache(e.Cache)
	}
	var c *Cache
	if e.HasCache {
		c = &e.Cache
	}
	if len(h.key) > maxKeyLen || len(e.Value) > maxValueLen {
		return ErrTooLarge
	}
	v, old, err := h.put(len(e.Value), c)
	if err != nil {
		return err
	}
	copy(v, e.Value)
	h.finish(old, e.Kind, e.ExpireAt, true)
	return nil
}

// RandomKey appends a random live key to dst.
//
// It picks a random shard, then random entries in it, so keys of a fuller
// shard are a little less likely (shards are balanced by the hash, so the
// bias is small). With locks, shards it does not hold are only tried with
// TryLock, and skipped when busy.
func (s *Store) RandomKey(dst []byte, locks *Locks) ([]byte, bool) {
	if s.Len() == 0 {
		return dst, false
	}
	now := s.Now()
	n := len(s.shards)
	for range 4 * n {
		i := rand.IntN(n)
		sh := &s.shards[i]
		if sh.keys.Load() == 0 {
			continue
		}
		locked, ok := s.tryAcquire(i, locks)
		if !ok {
			continue
		}
		for range min(32, int(sh.nEntries)) {
			if e := sh.entry(uint32(rand.IntN(int(sh.nEntries)))); isLive(e, now) {
				dst = append(dst, sh.key(e)...)
				if locked {
					sh.mu.Unlock()
				}
				return dst, true
			}
		}
		if locked {
			sh.mu.Unlock()
		}
	}
	// Sparse shards: walk them from a random one.
	start := rand.IntN(n)
	for k := range n {
		i := (start + k) & (n - 1)
		sh := &s.shards[i]
		locked, ok := s.tryAcquire(i, locks)
		if !ok {
			continue
		}
		for idx := range sh.nEntries {
			if e := sh.entry(idx); isLive(e, now) {
				dst = append(dst, sh.key(e)...)
				if locked {
					sh.mu.Unlock()
				}
				return dst, true
			}
		}
		if locked {
			sh.mu.Unlock()
		}
	}
	return dst, false
}

// isLive reports whether e is a key that has not expired.
func isLive(e *entry, now int64) bool {
	return e.flags&flagFree == 0 && Kind(e.flags&kindMask) != KindNone && (e.expireAt == 0 || now <= e.expireAt)
}

// tryAcquire locks shard i unless locks holds it, waiting only when that
// keeps the ascending lock order (locks holds nothing above i); otherwise it
// tries once. It reports whether it locked and whether the shard is usable.
func (s *Store) tryAcquire(i int, locks *Locks) (locked, ok bool) {
	switch {
	case locks.has(i):
		return false, true
	case locks.highest() < i:
		s.shards[i].mu.Lock()
		return true, true
	default:
		ok = s.shards[i].mu.TryLock()
		return ok, ok
	}
}
