package store

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
)

// A record is the bytes of one entry, kept in its shard's arena:
//
//	[0:4)   key length (uint32, little endian); the top bit (recCacheBit) is
//	        set when cache metadata follows, so that the index can find the
//	        key from the record alone (see shard.lookup)
//	[4:8)   value length (uint32)
//	[8:32)  cache metadata, only when the entry has flagCache:
//	        fresh-until (int64), lease token (uint64), lease-until (int64)
//	then    the key, then the value
//
// The rest of a record's slot, up to its size class, is slack that Append and
// SetRange grow into. Everything else about an entry (expiry, version, kind,
// slot, eviction counters) lives in the entry itself, which is read far more
// often than the optional cache metadata.
const (
	hdrSize   = 8
	cacheSize = 24
)

// Size limits, matching Redis's proto-max-bulk-len default.
const (
	// MaxKeyLen is the longest key the store accepts.
	MaxKeyLen = 512 << 20
	// MaxValueLen is the longest value the store accepts.
	MaxValueLen = 512 << 20
)

// The limits in force: variables only so that tests can reach them without
// allocating 512 MiB.
var maxKeyLen, maxValueLen = MaxKeyLen, MaxValueLen

// Size classes. Records up to 256 bytes are rounded up to a multiple of 8
// (so the common small record wastes at most 7 bytes), larger ones to one of
// eight steps per power of two (at most 12.5% slack) up to maxSmall. A record
// above maxSmall gets its own []byte (largeClass): big values neither
// fragment the chunks nor make them grow in large steps.
const (
	minRecord  = 16
	maxSmall   = 64 << 10
	numClasses = 31 + 8*8 // 16..256 by 8, then 8 steps for each of 256..64 KiB
	largeClass = 255
)

// classSizes[c] is the slot size of class c.
var classSizes = func() (s [numClasses]int) {
	for c := range s {
		if c <= 30 {
			s[c] = minRecord + 8*c
			continue
		}
		j := c - 31
		base := 256 << (j / 8)
		s[c] = base + (j%8+1)*(base/8)
	}
	return s
}()

// classOf returns the smallest class whose slots hold size bytes, or
// largeClass.
func classOf(size int) uint8 {
	if size <= 256 {
		if size < minRecord {
			size = minRecord
		}
		return uint8((size - 9) / 8)
	}
	if size > maxSmall {
		return largeClass
	}
	lg := bits.Len(uint(size - 1)) // 2^(lg-1) < size <= 2^lg
	base := 1 << (lg - 1)
	step := base >> 3
	k := (size - base + step - 1) / step // 1..8
	return uint8(31 + (lg-9)*8 + k - 1)
}

// Chunks. A chunk is a []byte that records of one shard are carved from by
// bumping an offset; a freed slot goes on its class's free list, whose links
// are stored in the first four bytes of the free slots themselves (in-band),
// so the free lists cost nothing per slot. A new chunk is an eighth of what
// the arena holds already (at least firstChunk, at most maxChunk): a store
// with few keys stays small (256 shards × 4 KiB at first), the part of the
// last chunk not yet carved is at most 1/8 of the arena (doubling chunks
// would waste up to half), and a big store has few chunks. Where chunks are
// memory mappings (canMap), every chunk after the first is maxChunk: see grow.
//
// A location (loc) names a slot: chunk index << chunkShift | offset / 8. With
// 256 KiB chunks and 17 bits of chunk index, one shard addresses 32 GiB.
const (
	firstChunk = 4 << 10
	maxChunk   = 256 << 10
	chunkShift = 15                     // log2(maxChunk / 8)
	maxChunks  = 1<<(32-chunkShift) - 1 // so that noLoc is never a real slot
	noLoc      = ^uint32(0)
)

// arena holds the records of one shard. It is guarded by the shard's lock.
type arena struct {
	chunks [][]byte // every chunk, full length; the last one is being carved
	tail   int      // bytes of the last chunk handed out so far
	size   int      // bytes in chunks
	// offHeap counts the bytes of chunks mapped off the heap: the shard's
	// counter, which its other blocks share.
	offHeap *atomic.Int64
	free    [numClasses]uint32 // head of each class's free list, noLoc when empty

	large     [][]byte // records above maxSmall, one allocation each; nil when free
	freeLarge []uint32 // free indexes into large
}

func (a *arena) init(offHeap *atomic.Int64) {
	a.offHeap = offHeap
	for i := range a.free {
		a.free[i] = noLoc
	}
}

// capOf returns the slot size of a record.
func (a *arena) capOf(class uint8, loc uint32) int {
	if class == largeClass {
		return len(a.large[loc])
	}
	return classSizes[class]
}

// rec returns the whole slot of a record.
func (a *arena) rec(class uint8, loc uint32) []byte {
	if class == largeClass {
		return a.large[loc]
	}
	c := a.chunks[loc>>chunkShift]
	off := int(loc&(1<<chunkShift-1)) << 3
	end := off + classSizes[class]
	return c[off:end:end]
}

// alloc returns a slot of class for a record of size bytes (for largeClass,
// size is the capacity wanted). The slot's content is undefined.
func (a *arena) alloc(class uint8, size int) uint32 {
	if class == largeClass {
		buf := make([]byte, size)
		if n := len(a.freeLarge); n > 0 {
			i := a.freeLarge[n-1]
			a.freeLarge = a.freeLarge[:n-1]
			a.large[i] = buf
			return i
		}
		a.large = append(a.large, buf)
		return uint32(len(a.large) - 1)
	}
	if head := a.free[class]; head != noLoc {
		a.free[class] = binary.LittleEndian.Uint32(a.rec(class, head))
		return head
	}
	sz := classSizes[class]
	if len(a.chunks) == 0 || a.tail+sz > len(a.chunks[len(a.chunks)-1]) {
		a.grow(sz)
	}
	loc := uint32(len(a.chunks)-1)<<chunkShift | uint32(a.tail>>3)
	a.tail += sz
	return loc
}

// grow starts a new chunk that holds at least sz bytes, first carving what is
// left of the current one into free slots so that nothing is stranded.
func (a *arena) grow(sz int) {
	if n := len(a.chunks); n > 0 {
		last := a.chunks[n-1]
		for rem := len(last) - a.tail; rem >= minRecord; rem = len(last) - a.tail {
			c := classOf(rem)
			if c == largeClass {
				c = numClasses - 1
			} else if classSizes[c] > rem {
				c--
			}
			loc := uint32(n-1)<<chunkShift | uint32(a.tail>>3)
			a.tail += classSizes[c]
			a.release(c, loc)
		}
	}
	if len(a.chunks) == maxChunks {
		panic("store: shard arena full (32 GiB); use more shards")
	}
	// Round to 8 KiB, the Go heap's page, above 32 KiB, where Go allocates whole pages.
	size := max(min(a.size/8, maxChunk), firstChunk, sz)
	if size > 32<<10 {
		size = (size + 8<<10 - 1) &^ (8<<10 - 1)
	}
	if canMap && len(a.chunks) > 0 {
		// Every chunk after the first is a mapping off the heap (see
		// allocBlock), whose pages cost memory only once records are
		// carved from them: a whole maxChunk wastes nothing, and keeps
		// a growing shard's chunks off the heap from its second one.
		size = maxChunk
	}
	a.chunks = append(a.chunks, allocBlock[byte](size, a.offHeap))
	a.size += size
	a.tail = 0
}

// release puts a slot back on its free list (or drops a large record).
func (a *arena) release(class uint8, loc uint32) {
	if class == largeClass {
		a.large[loc] = nil
		a.freeLarge = append(a.freeLarge, loc)
		return
	}
	binary.LittleEndian.PutUint32(a.rec(class, loc), a.free[class])
	a.free[class] = loc
}

// Record field access. off is where the key starts (after the header and the
// optional cache metadata).

// recCacheBit marks, in a record's key-length word, that the record carries
// cache metadata (keys are at most MaxKeyLen, far below it).
const recCacheBit = 1 << 31

func recKeyLen(rec []byte) int { return int(binary.LittleEndian.Uint32(rec[0:4]) &^ recCacheBit) }

// recKey returns a record's key, reading the layout from the record itself.
func recKey(rec []byte) []byte {
	w := binary.LittleEndian.Uint32(rec[0:4])
	off := hdrSize
	if w&recCacheBit != 0 {
		off += cacheSize
	}
	return rec[off : off+int(w&^recCacheBit)]
}

// markCache sets the record's cache bit: cache metadata now follows its
// header (writeHeader sets or clears it for a new record).
func markCache(rec []byte) {
	binary.LittleEndian.PutUint32(rec[0:4], binary.LittleEndian.Uint32(rec[0:4])|recCacheBit)
}
func recValLen(rec []byte) int { return int(binary.LittleEndian.Uint32(rec[4:8])) }
func setValLen(rec []byte, n int) {
	binary.LittleEndian.PutUint32(rec[4:8], uint32(n))
}

func recCache(rec []byte) Cache {
	return Cache{
		FreshUntil: int64(binary.LittleEndian.Uint64(rec[8:16])),
		LeaseToken: binary.LittleEndian.Uint64(rec[16:24]),
		LeaseUntil: int64(binary.LittleEndian.Uint64(rec[24:32])),
	}
}

func putCache(rec []byte, c *Cache) {
	binary.LittleEndian.PutUint64(rec[8:16], uint64(c.FreshUntil))
	binary.LittleEndian.PutUint64(rec[16:24], c.LeaseToken)
	binary.LittleEndian.PutUint64(rec[24:32], uint64(c.LeaseUntil))
}

// recordSize is the bytes a record needs.
func recordSize(klen, vlen int, cache bool) int {
	n := hdrSize + klen + vlen
	if cache {
		n += cacheSize
	}
	return n
}

// writeHeader fills in a new record's header, cache metadata (when c is
// not nil) and key, for a value of vlen bytes that the caller copies in.
func writeHeader(rec, key []byte, vlen int, c *Cache) {
	klen := uint32(len(key))
	off := hdrSize
	if c != nil {
		putCache(rec, c)
		off += cacheSize
		klen |= recCacheBit
	}
	binary.LittleEndian.PutUint32(rec[0:4], klen)
	binary.LittleEndian.PutUint32(rec[4:8], uint32(vlen))
	copy(rec[off:], key)
}
