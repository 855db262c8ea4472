package store

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// The store's big blocks live outside the Go heap: index tables, full pages
// of entries and record chunks of offHeapMin bytes or more are anonymous
// memory mappings, returned to the system when the shard drops them (a
// table resized, a Flush) or the Store becomes unreachable.
//
// None of them holds a Go pointer, so the garbage collector has nothing to
// find in them; on its heap they would only pace it. A cache filling up
// doubles the Go heap again and again, and each doubling is a GC cycle with
// its two stop-the-world pauses: thirteen while loading 10M keys, for no
// garbage at all. Off the heap, the collector runs for the little garbage
// the server makes, and its heap stays small. The store's memory accounting
// (Config.MaxMemory, INFO used_memory) and the process's RSS are unchanged.
//
// Smaller blocks (the first page, table and chunk of a small shard, while
// under 16 KiB) stay on the heap: a mapping costs a system call and at
// least a page. Where mappings are unavailable, or the system refuses one,
// blocks come from the heap.
const offHeapMin = 16 << 10

// mapped records the live mappings by base address, so that a block is
// unmapped only if it was mapped (a block that fell back to the heap is
// left to the collector).
var mapped struct {
	mu sync.Mutex
	by map[unsafe.Pointer][]byte
}

// OffHeap returns the bytes the store holds in memory mappings outside the
// Go heap (address space: pages not written yet take no memory).
func (s *Store) OffHeap() int64 {
	var n int64
	for i := range s.shards {
		n += s.shards[i].offHeap.Load()
	}
	return n
}

// allocBlock returns n zeroed elements of T, off the heap when they take
// offHeapMin bytes or more, and adds the bytes mapped to count. T must hold
// no pointers. Free it with freeBlock and do not grow it with append.
func allocBlock[T any](n int, count *atomic.Int64) []T {
	size := n * int(unsafe.Sizeof(*new(T)))
	if size >= offHeapMin {
		if b := mapBytes(size); b != nil {
			p := unsafe.Pointer(unsafe.SliceData(b))
			mapped.mu.Lock()
			if mapped.by == nil {
				mapped.by = make(map[unsafe.Pointer][]byte)
			}
			mapped.by[p] = b
			mapped.mu.Unlock()
			count.Add(int64(len(b)))
			return unsafe.Slice((*T)(p), n)
		}
	}
	return make([]T, n)
}

// freeBlock returns a block from allocBlock (any length, its full
// capacity) to the system, taking the bytes unmapped from count. Nothing
// may use it afterwards.
func freeBlock[T any](s []T, count *atomic.Int64) {
	if cap(s)*int(unsafe.Sizeof(*new(T))) < offHeapMin {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	mapped.mu.Lock()
	b, ok := mapped.by[p]
	delete(mapped.by, p)
	mapped.mu.Unlock()
	if ok {
		count.Add(-int64(len(b)))
		unmapBytes(b)
	}
}
