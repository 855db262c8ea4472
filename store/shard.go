package store

import (
	"bytes"
	"sync"
	"sync/atomic"
	"unsafe"
)

// entry is the fixed part of one record: 32 bytes with no pointers, kept in
// pages of a []entry so the garbage collector never looks inside them. An
// entry's index in its shard is stable for the entry's life (the Scan cursor
// relies on it); freed indexes are reused through a free list threaded
// through atime.
type entry struct {
	expireAt int64  // hard expiry, Unix ms; 0 = none
	version  uint64 // the shard's write counter at the last write; 0 for placeholders
	loc      uint32 // where the record is: see arena (an index into large for largeClass)
	atime    uint32 // LRU: the shard's access tick at the last access; next free index when free
	slot     uint16 // cluster slot (Config.Slot)
	ltime    uint16 // LFU: minutes (mod 2^16) of the last access, for decay
	freq     uint8  // LFU: logarithmic access counter, as Redis's
	class    uint8  // size class of the record's slot
	flags    uint8  // the Kind in the low bits, then flagFree, flagCache, flagVolList
	pins     uint8  // open Handles on the entry; eviction skips pinned entries
}

const (
	kindMask    = 0x03
	flagFree    = 0x04 // the index is on the free list
	flagCache   = 0x08 // the record carries cache metadata
	flagVolList = 0x10 // the index is in the shard's volatile list (maybe stale)
)

// entryCost is what an entry costs beyond its record slot: the entry itself
// plus its share of the index table (16-byte slots, 53% to 80% full, so 24
// bytes on average). It is charged to the memory accounting with each entry.
const entryCost = int64(unsafe.Sizeof(entry{})) + 24

// Entries live in pages of pageSize so that growing a big shard never copies
// it; the first page grows by doubling up to pageSize so that a small shard
// stays small (see newEntry).
const (
	pageShift = 11 // 64 KiB of entries: a full page is one block off the heap
	pageSize  = 1 << pageShift
	noIdx     = ^uint32(0)
)

// shard is one lock's worth of the key space.
//
// The index is an open-addressing table with linear probing: each 16-byte
// slot holds the low 32 bits of the key's hash (the tag), the entry index + 1
// (0 for an empty slot) and where the record is (see islot). A lookup
// compares tags first and reads a record only on a tag match. The home slot
// is the tag scaled to the table size (Lemire's multiply-shift), so the
// table may have any size: it grows by half when 80%
// full and halves when under 20% full. Deletion shifts the following cluster
// back (no tombstones), so probe lengths never degrade.
type shard struct {
	mu sync.Mutex

	table []islot // the index; see islot
	used  int     // occupied table slots: live entries, placeholders included

	pages    [][]entry // entry i is pages[i>>pageShift][i&(pageSize-1)]
	nEntries uint32    // entry indexes handed out (high-water mark)
	freeHead uint32    // first free entry index, noIdx when none

	arena arena

	// volatile lists the indexes of entries with an expiry, so that active
	// expiry and the volatile-* policies sample them directly. Entries leave
	// it lazily: a sampler that meets an index whose entry no longer expires
	// (or was freed) drops it. flagVolList keeps an index from being listed twice.
	volatile []uint32

	version uint64 // write counter; versions are never reused within a shard
	tick    uint32 // access counter for LRU
	rng     uint64 // xorshift state for sampling and the LFU counter
	mem     int64  // accounted bytes of this shard

	keys atomic.Int64 // live keys (placeholders excluded), for Len without locks
	// slotKeys counts keys per cluster slot, shared by every shard of a
	// store with Config.Slot (nil without), for SlotLen.
	slotKeys []atomic.Int32
	expires  atomic.Int64 // live keys with an expiry
	offHeap  atomic.Int64 // bytes of the shard's blocks mapped off the heap

	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// release returns the shard's blocks (see allocBlock); the shard must be
// reset or dropped afterwards.
func (sh *shard) release() {
	freeBlock(sh.table, &sh.offHeap)
	for _, p := range sh.pages {
		freeBlock(p, &sh.offHeap)
	}
	for _, c := range sh.arena.chunks {
		freeBlock(c, &sh.offHeap)
	}
}

func (sh *shard) init(seed uint64) {
	sh.freeHead = noIdx
	sh.arena.init(&sh.offHeap)
	sh.rng = seed | 1
}

// entry returns entry idx. The pointer is valid until the next newEntry.
func (sh *shard) entry(idx uint32) *entry {
	return &sh.pages[idx>>pageShift][idx&(pageSize-1)]
}

// newEntry hands out an entry index; the entry's content is undefined except
// that flagVolList is kept (see volatile).
func (sh *shard) newEntry() uint32 {
	if idx := sh.freeHead; idx != noIdx {
		e := sh.entry(idx)
		sh.freeHead = e.atime
		e.flags &^= flagFree
		return idx
	}
	idx := sh.nEntries
	p := int(idx >> pageShift)
	if p == len(sh.pages) {
		// The first page grows by doubling, so that a small shard stays
		// small; later ones are whole pages off the heap from the start
		// (their memory is used as entries are written), so that growing
		// them leaves no garbage.
		if p == 0 || !canMap {
			sh.pages = append(sh.pages, make([]entry, 0, 16))
		} else {
			sh.pages = append(sh.pages, allocBlock[entry](pageSize, &sh.offHeap)[:0])
		}
	}
	page := sh.pages[p]
	if len(page) == cap(page) {
		n := min(2*cap(page), pageSize)
		if canMap && n*int(unsafe.Sizeof(entry{})) >= offHeapMin {
			// Off the heap, a whole page costs memory only as it fills.
			n = pageSize
		}
		grown := allocBlock[entry](n, &sh.offHeap)[:len(page)]
		copy(grown, page)
		freeBlock(page, &sh.offHeap)
		page = grown
	}
	sh.pages[p] = page[:len(page)+1]
	sh.nEntries++
	return idx
}

// freeEntry puts idx on the free list.
func (sh *shard) freeEntry(idx uint32) {
	e := sh.entry(idx)
	*e = entry{atime: sh.freeHead, flags: flagFree | e.flags&flagVolList}
	sh.freeHead = idx
}

// rec returns the slot of e's record.
func (sh *shard) rec(e *entry) []byte { return sh.arena.rec(e.class, e.loc) }

// keyOff is where the key starts in e's record.
func keyOff(e *entry) int {
	if e.flags&flagCache != 0 {
		return hdrSize + cacheSize
	}
	return hdrSize
}

// key returns the key of entry idx.
func (sh *shard) key(e *entry) []byte { return recKey(sh.rec(e)) }

func (sh *shard) rand() uint64 {
	x := sh.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	sh.rng = x
	return x
}

// randn returns a number in [0, n).
func (sh *shard) randn(n int) int {
	return int((uint64(uint32(sh.rand())) * uint64(n)) >> 32)
}

// home is the slot a tag hashes to in a table of n slots.
func home(tag uint32, n int) int { return int((uint64(tag) * uint64(n)) >> 32) }

// islot is a slot of the index: key holds the tag (the low 32 bits of the
// key's hash) and the entry's index + 1, 0 for an empty slot; at holds
// where the entry's record is (class<<32 | loc). With the record's place in
// the slot, a lookup reads the slot and then the record and the entry at
// once, instead of the entry and only then the record: on a big store each
// of them is a cache miss, and two in a row cost less than three.
type islot struct {
	key uint64
	at  uint64
}

func slotAt(class uint8, loc uint32) uint64 { return uint64(class)<<32 | uint64(loc) }

// lookup returns the index of key's entry, or noIdx.
func (sh *shard) lookup(key []byte, tag uint32) uint32 {
	t := sh.table
	n := len(t)
	if n == 0 {
		return noIdx
	}
	for i := home(tag, n); ; {
		v := &t[i]
		if v.key == 0 {
			return noIdx
		}
		if uint32(v.key>>32) == tag {
			idx := uint32(v.key) - 1
			if bytes.Equal(recKey(sh.arena.rec(uint8(v.at>>32), uint32(v.at))), key) {
				return idx
			}
		}
		if i++; i == n {
			i = 0
		}
	}
}

// link adds entry idx with tag, whose record is class and loc, to the table.
func (sh *shard) link(tag uint32, idx uint32, class uint8, loc uint32) {
	if (sh.used+1)*5 > len(sh.table)*4 {
		sh.resize(max(8, (len(sh.table)*3/2+7)&^7))
	}
	place(sh.table, islot{uint64(tag)<<32 | uint64(idx+1), slotAt(class, loc)})
	sh.used++
}

// moved records in the table that entry idx's record is now class and loc.
func (sh *shard) moved(tag uint32, idx uint32, class uint8, loc uint32) {
	sh.table[sh.find(tag, idx)].at = slotAt(class, loc)
}

// find returns the table slot of entry idx, whose key has tag.
func (sh *shard) find(tag uint32, idx uint32) int {
	t := sh.table
	n := len(t)
	want := uint64(tag)<<32 | uint64(idx+1)
	i := home(tag, n)
	for t[i].key != want {
		if i++; i == n {
			i = 0
		}
	}
	return i
}

func place(t []islot, v islot) {
	n := len(t)
	i := home(uint32(v.key>>32), n)
	for t[i].key != 0 {
		if i++; i == n {
			i = 0
		}
	}
	t[i] = v
}

// unlink removes entry idx with tag from the table, shifting back the rest
// of its cluster so that every entry stays reachable from its home slot.
func (sh *shard) unlink(tag uint32, idx uint32) {
	t := sh.table
	n := len(t)
	i := sh.find(tag, idx)
	for j := i; ; {
		if j++; j == n {
			j = 0
		}
		v := t[j]
		if v.key == 0 {
			break
		}
		k := home(uint32(v.key>>32), n)
		// v stays where it is if its home lies cyclically in (i, j].
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		t[i] = v
		i = j
	}
	t[i] = islot{}
	sh.used--
	if n > 8 && sh.used*5 < n {
		sh.resize(max(8, (n/2+7)&^7))
	}
}

func (sh *shard) resize(n int) {
	t := allocBlock[islot](n, &sh.offHeap)
	for _, v := range sh.table {
		if v.key != 0 {
			place(t, v)
		}
	}
	freeBlock(sh.table, &sh.offHeap)
	sh.table = t
}

// count adds d to the key counters for e (placeholders are not keys).
func (sh *shard) count(e *entry, d int64) {
	if Kind(e.flags&kindMask) == KindNone {
		return
	}
	sh.keys.Add(d)
	if sh.slotKeys != nil {
		sh.slotKeys[e.slot].Add(int32(d))
	}
	if e.expireAt != 0 {
		sh.expires.Add(d)
	}
}

// listVolatile puts idx in the volatile list if e expires and is not there yet.
func (sh *shard) listVolatile(idx uint32, e *entry) {
	if e.expireAt != 0 && e.flags&flagVolList == 0 {
		e.flags |= flagVolList
		sh.volatile = append(sh.volatile, idx)
	}
}

// unlistVolatile drops position i of the volatile list.
func (sh *shard) unlistVolatile(i int) {
	last := len(sh.volatile) - 1
	sh.entry(sh.volatile[i]).flags &^= flagVolList
	sh.volatile[i] = sh.volatile[last]
	sh.volatile = sh.volatile[:last]
}

// reset empties the shard, returning its memory to the Go heap and the
// system. The version counter carries on, so versions stay unique across a
// Flush.
func (sh *shard) reset() {
	sh.release()
	sh.table = nil
	sh.used = 0
	sh.pages = nil
	sh.nEntries = 0
	sh.freeHead = noIdx
	sh.arena = arena{}
	sh.arena.init(&sh.offHeap)
	sh.volatile = nil
	sh.mem = 0
	sh.keys.Store(0)
	sh.expires.Store(0)
}
