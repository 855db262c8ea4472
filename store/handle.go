package store

import (
	"errors"

	"github.com/cespare/xxhash/v2"
)

// ErrOffset is returned by SetRange for a negative offset.
var ErrOffset = errors.New("store: offset out of range")

// Handle is one key opened for reading and writing. It holds the key's shard
// lock from Open to Close; slices it returns are valid until the next mutation
// through it or Close. A Handle may live on the caller's stack and be reused.
//
// An open Handle pins its entry: eviction (run by writes through other
// Handles that hold the same shard via Locks) never removes it, so values read
// through one Handle may be passed to a write through another. Do not open the
// same key twice at once: a write through one would not be seen by the other.
type Handle struct {
	s      *Store
	sh     *shard
	locks  *Locks // the caller's locks, which eviction may reach into
	key    []byte // the caller's key, kept for creating the entry
	hash   uint64
	now    int64  // Unix ms at Open
	idx    uint32 // the entry, noIdx when the key is absent
	si     int32  // index of sh
	locked bool   // Open took the shard lock (Close releases it)
}

// Open looks key up, expiring it lazily, and locks its shard unless locks holds it.
//
// An expired key is removed here (and reported to OnRemove); a key found
// counts as accessed for eviction (LRU clock, LFU counter), as in Redis.
//
// locks, when not nil, should hold key's shard (LockKeys with key among the
// keys): locking a shard below one already held could deadlock. The Handle
// keeps key until Close, so key escapes to the heap: Open allocates nothing
// when key already lives there (a parsed command argument does).
func (s *Store) Open(h *Handle, key []byte, locks *Locks) {
	s.OpenAt(h, key, locks, s.Now())
}

// OpenAt is Open at the time now (Unix ms, as Store.Now returns), for a
// caller running a batch of operations that share one reading of the
// clock. now should be recent: keys whose expiry falls after it are served.
func (s *Store) OpenAt(h *Handle, key []byte, locks *Locks, now int64) {
	hash := xxhash.Sum64(key)
	i := s.shardOf(hash)
	sh := &s.shards[i]
	locked := !locks.has(i)
	if locked {
		sh.mu.Lock()
	}
	*h = Handle{s: s, sh: sh, locks: locks, key: key, hash: hash, now: now, idx: noIdx, si: int32(i), locked: locked}
	idx := sh.lookup(key, uint32(hash))
	if idx == noIdx {
		return
	}
	e := sh.entry(idx)
	if e.expireAt != 0 && now > e.expireAt {
		s.drop(sh, idx, true)
		return
	}
	sh.touch(e, now)
	e.pins++
	h.idx = idx
}

// Now returns the store's clock at Open, Unix ms: the time the Handle's
// expiry checks used, which callers can reuse instead of reading the clock
// again while they hold the key.
func (h *Handle) Now() int64 { return h.now }

// Close releases the shard lock taken by Open. Closing twice, or closing a
// zero Handle, does nothing.
func (h *Handle) Close() {
	if h.sh == nil {
		return
	}
	if h.idx != noIdx {
		h.sh.entry(h.idx).pins--
	}
	if h.locked {
		h.sh.mu.Unlock()
	}
	*h = Handle{idx: noIdx}
}

// e returns the open entry, nil when the key is absent.
func (h *Handle) e() *entry {
	if h.sh == nil || h.idx == noIdx {
		return nil
	}
	return h.sh.entry(h.idx)
}

// live returns the open entry if it is a key (not a placeholder).
func (h *Handle) live() *entry {
	e := h.e()
	if e == nil || Kind(e.flags&kindMask) == KindNone {
		return nil
	}
	return e
}

// Exists reports whether the key holds a live value (placeholders do not count).
func (h *Handle) Exists() bool { return h.live() != nil }

// Kind returns the record's kind; KindNone when absent or a placeholder.
func (h *Handle) Kind() Kind {
	if e := h.e(); e != nil {
		return Kind(e.flags & kindMask)
	}
	return KindNone
}

// Value returns the stored value (nil when absent). The slice points into the
// store's memory: do not modify it or keep it past the next mutation or Close.
func (h *Handle) Value() []byte {
	e := h.live()
	if e == nil {
		return nil
	}
	rec := h.sh.rec(e)
	off := keyOff(e) + recKeyLen(rec)
	end := off + recValLen(rec)
	return rec[off:end:end]
}

// ExpireAt returns the hard expiry in Unix ms, 0 when the key does not expire
// (or is absent, or a placeholder, whose life Cache().LeaseUntil tells).
func (h *Handle) ExpireAt() int64 {
	if e := h.live(); e != nil {
		return e.expireAt
	}
	return 0
}

// Version changes on every write of the key; a key created again after a
// delete gets a version it never had. WATCH compares versions.
//
// Versions come from a per-shard counter that never goes back (not even on
// Flush). An absent key, and a placeholder, have version 0, so a key created
// and deleted again between two reads is not noticed by comparing versions.
func (h *Handle) Version() uint64 {
	if e := h.e(); e != nil {
		return e.version
	}
	return 0
}

// Cache returns the entry's stale-while-revalidate metadata, if it has any
// (placeholders included).
func (h *Handle) Cache() (Cache, bool) {
	e := h.e()
	if e == nil || e.flags&flagCache == 0 {
		return Cache{}, false
	}
	return recCache(h.sh.rec(e)), true
}

// Set stores val with kind and hard expiry (Unix ms, 0 = none), creating the
// key or replacing it and dropping any cache metadata. KindNone is stored as
// KindString. Overwriting a value with one of the same size class writes in
// place and allocates nothing.
//
// It fails with ErrTooLarge for a key or value over 512 MiB, and with ErrOOM
// (changing nothing) when the write would grow memory past MaxMemory and
// nothing can be evicted.
func (h *Handle) Set(val []byte, kind Kind, expireAt int64) error {
	return h.write(val, kind, expireAt, nil)
}

// SetCache stores val as a string with cache metadata c.
func (h *Handle) SetCache(val []byte, expireAt int64, c Cache) error {
	return h.write(val, KindString, expireAt, &c)
}

func (h *Handle) write(val []byte, kind Kind, expireAt int64, c *Cache) error {
	if len(h.key) > maxKeyLen || len(val) > maxValueLen {
		return ErrTooLarge
	}
	if kind == KindNone || kind > KindLimiter {
		kind = KindString
	}
	v, old, err := h.put(len(val), c)
	if err != nil {
		return err
	}
	copy(v, val)
	h.finish(old, kind, expireAt, true)
	return nil
}

// slotRef names a record slot that a write replaced; it is released only
// after the new value is copied, because that value may be the old one.
type slotRef struct {
	class uint8
	loc   uint32
	valid bool
}

// put makes the record of h's key hold a value of n bytes, with cache
// metadata c (or none), creating the entry if needed. It writes the header,
// key and metadata and returns the value's bytes for the caller to fill, and
// the old slot if the record moved. The entry's kind and expiry are not set
// yet (see finish). The record stays in place when its size class and layout
// stay the same.
func (h *Handle) put(n int, c *Cache) ([]byte, slotRef, error) {
	sh := h.sh
	withCache := c != nil
	need := recordSize(len(h.key), n, withCache)
	class := classOf(need)
	size := need
	if class != largeClass {
		size = classSizes[class]
	}
	off := recordSize(len(h.key), 0, withCache)
	var prev slotRef
	e := h.e()
	if e == nil {
		if err := h.reserve(entryCost + int64(size)); err != nil {
			return nil, slotRef{}, err
		}
		e = h.create(class, size)
	} else {
		old := sh.arena.capOf(e.class, e.loc)
		sameLayout := (e.flags&flagCache != 0) == withCache
		if sameLayout && class == e.class && (class != largeClass || (need <= old && need > old/2)) {
			rec := sh.rec(e)
			setValLen(rec, n)
			if withCache {
				putCache(rec, c)
			}
			return rec[off : off+n : off+n], slotRef{}, nil
		}
		if err := h.reserve(int64(size - old)); err != nil {
			return nil, slotRef{}, err
		}
		prev = slotRef{e.class, e.loc, true}
		e.class, e.loc = class, sh.arena.alloc(class, size)
		sh.moved(uint32(h.hash), h.idx, class, e.loc)
	}
	rec := sh.rec(e)
	writeHeader(rec, h.key, n, c)
	e.flags &^= flagCache
	if withCache {
		e.flags |= flagCache
	}
	return rec[off : off+n : off+n], prev, nil
}

// finish releases the replaced slot and sets the entry's kind and expiry,
// with a new version when bump is set.
func (h *Handle) finish(old slotRef, kind Kind, expireAt int64, bump bool) {
	sh := h.sh
	if old.valid {
		sh.arena.release(old.class, old.loc)
	}
	e := sh.entry(h.idx)
	sh.setMeta(h.idx, e, kind, expireAt)
	if bump {
		sh.version++
		e.version = sh.version
	}
}

// create allocates an entry and a record slot for h's key, links it into the
// table and pins it. Its kind is KindNone until finish.
func (h *Handle) create(class uint8, size int) *entry {
	sh := h.sh
	idx := sh.newEntry()
	e := sh.entry(idx)
	sh.tick++
	*e = entry{
		loc:   sh.arena.alloc(class, size),
		atime: sh.tick,
		slot:  h.s.slotOf(h.key),
		ltime: lfuMinutes(h.now),
		freq:  lfuInitVal,
		class: class,
		flags: e.flags & flagVolList,
		pins:  1,
	}
	sh.link(uint32(h.hash), idx, class, e.loc)
	h.idx = idx
	return e
}

// setMeta changes e's kind and expiry, keeping the key counters and the
// volatile list in step.
func (sh *shard) setMeta(idx uint32, e *entry, kind Kind, expireAt int64) {
	wasKey := Kind(e.flags&kindMask) != KindNone
	wasVolatile := wasKey && e.expireAt != 0
	e.flags = e.flags&^kindMask | uint8(kind)
	e.expireAt = expireAt
	isKey := kind != KindNone
	if isVolatile := isKey && expireAt != 0; isVolatile != wasVolatile {
		sh.expires.Add(delta(isVolatile))
	}
	if isKey != wasKey {
		sh.keys.Add(delta(isKey))
		if sh.slotKeys != nil {
			sh.slotKeys[e.slot].Add(int32(delta(isKey)))
		}
	}
	sh.listVolatile(idx, e)
}

// delta is +1 for a state entered, -1 for one left.
func delta(entered bool) int64 {
	if entered {
		return 1
	}
	return -1
}

// reserve charges n bytes (n may be negative) to the store, evicting first
// when the charge would exceed MaxMemory. It changes nothing when it fails.
func (h *Handle) reserve(n int64) error {
	s := h.s
	switch limit := s.maxMem.Load(); {
	case n <= 0 || limit == 0:
		s.mem.Add(n)
	case n > limit:
		return ErrOOM
	default:
		for {
			cur := s.mem.Load()
			if cur+n <= limit {
				if s.mem.CompareAndSwap(cur, cur+n) {
					break
				}
				continue
			}
			if !s.evictOne(h.sh, int(h.si), h.locks, h.now) {
				return ErrOOM
			}
			limit = s.maxMem.Load()
		}
	}
	h.sh.mem += n
	return nil
}

// UpdateCache changes the cache metadata of the key (creating a placeholder
// that expires at c.LeaseUntil when the key is absent) without touching the
// value or the version.
//
// A placeholder lives until c.LeaseUntil: with LeaseUntil 0, UpdateCache
// removes a placeholder, and creates none for an absent key.
func (h *Handle) UpdateCache(c Cache) error {
	e := h.e()
	switch {
	case e == nil:
		if c.LeaseUntil == 0 {
			return nil
		}
		if len(h.key) > maxKeyLen {
			return ErrTooLarge
		}
		_, old, err := h.put(0, &c)
		if err != nil {
			return err
		}
		h.finish(old, KindNone, c.LeaseUntil, false)
	case Kind(e.flags&kindMask) == KindNone:
		if c.LeaseUntil == 0 {
			h.Delete()
			return nil
		}
		putCache(h.sh.rec(e), &c)
		h.sh.setMeta(h.idx, e, KindNone, c.LeaseUntil)
	case e.flags&flagCache != 0:
		putCache(h.sh.rec(e), &c)
	default:
		return h.addCache(e, &c)
	}
	return nil
}

// addCache inserts cache metadata into the record of a live key that has
// none, moving the key and value up in place when the slot has room.
func (h *Handle) addCache(e *entry, c *Cache) error {
	sh := h.sh
	rec := sh.rec(e)
	klen, vlen := recKeyLen(rec), recValLen(rec)
	need := recordSize(klen, vlen, true)
	if need <= len(rec) {
		copy(rec[hdrSize+cacheSize+klen:], rec[hdrSize+klen:hdrSize+klen+vlen])
		copy(rec[hdrSize+cacheSize:], h.key)
		putCache(rec, c)
		markCache(rec)
		e.flags |= flagCache
		return nil
	}
	nrec, old, err := h.relocate(e, need)
	if err != nil {
		return err
	}
	copy(nrec[hdrSize+cacheSize+klen:], nrec[hdrSize+klen:hdrSize+klen+vlen])
	copy(nrec[hdrSize+cacheSize:], h.key)
	putCache(nrec, c)
	markCache(nrec)
	e.flags |= flagCache
	sh.arena.release(old.class, old.loc)
	return nil
}

// relocate moves e's record into a slot of at least size bytes, copying its
// used bytes, and returns the new slot and the old one, which the caller
// releases once it no longer reads from it.
func (h *Handle) relocate(e *entry, size int) ([]byte, slotRef, error) {
	sh := h.sh
	class := classOf(size)
	if class != largeClass {
		size = classSizes[class]
	}
	old := sh.arena.capOf(e.class, e.loc)
	if err := h.reserve(int64(size - old)); err != nil {
		return nil, slotRef{}, err
	}
	orec := sh.rec(e)
	used := keyOff(e) + recKeyLen(orec) + recValLen(orec)
	prev := slotRef{e.class, e.loc, true}
	e.class, e.loc = class, sh.arena.alloc(class, size)
	sh.moved(uint32(h.hash), h.idx, class, e.loc)
	rec := sh.rec(e)
	copy(rec, orec[:used])
	return rec, prev, nil
}

// growTarget is the slot size for a record that grew to need bytes: twice
// that under 1 MiB, 1 MiB more above, as Redis grows strings, so that
// repeated appends copy a value O(log n) times.
func growTarget(need int) int {
	if need < 1<<20 {
		return 2 * need
	}
	return need + 1<<20
}

// Append appends b to the value (creating the key) and returns the new length.
// It writes in place when the record's slot has room, and otherwise moves the
// record to a slot with room to spare. An existing key keeps its kind, expiry
// and cache metadata; a placeholder is replaced by a plain string.
func (h *Handle) Append(b []byte) (int, error) {
	e := h.live()
	if e == nil {
		if err := h.write(b, KindString, 0, nil); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	sh := h.sh
	rec := sh.rec(e)
	off := keyOff(e) + recKeyLen(rec)
	vlen := recValLen(rec)
	n := vlen + len(b)
	if n > maxValueLen {
		return 0, ErrTooLarge
	}
	old := slotRef{}
	if off+n > len(rec) {
		var err error
		if rec, old, err = h.relocate(e, growTarget(off+n)); err != nil {
			return 0, err
		}
	}
	copy(rec[off+vlen:], b)
	setValLen(rec, n)
	h.finish(old, Kind(e.flags&kindMask), e.expireAt, true)
	return n, nil
}

// SetRange overwrites the value at offset with b, zero-padding, and returns the new length.
//
// As Redis's SETRANGE: an empty b changes nothing (and creates no key); a
// missing key (or a placeholder) becomes a string of offset zero bytes and
// then b. It fails with ErrOffset for a negative offset and ErrTooLarge when
// the value would pass 512 MiB.
func (h *Handle) SetRange(offset int, b []byte) (int, error) {
	if offset < 0 {
		return 0, ErrOffset
	}
	if offset > maxValueLen || offset+len(b) > maxValueLen {
		return 0, ErrTooLarge
	}
	e := h.live()
	if e == nil {
		if len(b) == 0 {
			return 0, nil
		}
		if len(h.key) > maxKeyLen {
			return 0, ErrTooLarge
		}
		v, old, err := h.put(offset+len(b), nil)
		if err != nil {
			return 0, err
		}
		clear(v[:offset])
		copy(v[offset:], b)
		h.finish(old, KindString, 0, true)
		return len(v), nil
	}
	sh := h.sh
	rec := sh.rec(e)
	off := keyOff(e) + recKeyLen(rec)
	vlen := recValLen(rec)
	if len(b) == 0 {
		return vlen, nil
	}
	n := max(vlen, offset+len(b))
	old := slotRef{}
	if off+n > len(rec) {
		var err error
		if rec, old, err = h.relocate(e, growTarget(off+n)); err != nil {
			return 0, err
		}
	}
	if offset > vlen {
		clear(rec[off+vlen : off+offset])
	}
	copy(rec[off+offset:], b)
	setValLen(rec, n)
	h.finish(old, Kind(e.flags&kindMask), e.expireAt, true)
	return n, nil
}

// SetExpireAt changes the hard expiry (0 = persist) of an existing key, and
// its version. It does nothing on an absent key or a placeholder.
func (h *Handle) SetExpireAt(ms int64) {
	if e := h.live(); e != nil {
		h.finish(slotRef{}, Kind(e.flags&kindMask), ms, true)
	}
}

// Delete removes the key (or the placeholder). It does not call OnRemove.
func (h *Handle) Delete() {
	if h.e() == nil {
		return
	}
	h.s.remove(h.sh, h.idx, uint32(h.hash))
	h.idx = noIdx
}
