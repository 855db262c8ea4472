//go:build unix

package store

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// TestOffHeapBlocks: a block of offHeapMin bytes or more is zeroed memory
// counted off the heap until freed; a smaller one is an ordinary slice.
func TestOffHeapBlocks(t *testing.T) {
	var count atomic.Int64
	b := allocBlock[uint64](offHeapMin/8, &count)
	if got := count.Load(); got != offHeapMin {
		t.Fatalf("a %d-byte block added %d bytes off the heap", offHeapMin, got)
	}
	for i := range b {
		if b[i] != 0 {
			t.Fatalf("block not zeroed at %d", i)
		}
		b[i] = uint64(i)
	}
	freeBlock(b[:10], &count) // any length: the capacity is the block
	if got := count.Load(); got != 0 {
		t.Fatalf("after freeBlock %d bytes off the heap", got)
	}
	small := allocBlock[uint64](8, &count)
	small[7] = 1
	freeBlock(small, &count)
	if got := count.Load(); got != 0 {
		t.Fatalf("a small block changed the off-heap bytes to %d", got)
	}
}

// TestStoreDataOffHeap: what a big store holds (index, entries, records)
// is off the Go heap, so that filling the store does not grow the heap the
// garbage collector paces itself by, and a Flush gives it back.
func TestStoreDataOffHeap(t *testing.T) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapAlloc

	s, _ := newTest(t, Config{Shards: 4})
	const n = 200_000
	for i := range n {
		if err := set(s, string(key16(i)), string(value64(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap, off := int64(ms.HeapAlloc-heap0), s.OffHeap()
	used := s.Memory()
	t.Logf("%d keys: store accounts %d bytes; %d off the heap, the Go heap grew %d", n, used, off, heap)
	if off < used*3/4 {
		t.Errorf("only %d of the store's %d bytes are off the heap", off, used)
	}
	if heap > used/8 {
		t.Errorf("the Go heap grew %d bytes for a store of %d", heap, used)
	}
	if v, ok := get(s, string(key16(n-1))); !ok || string(v) != string(value64(n-1)) {
		t.Fatalf("last key reads %q, %v", v, ok)
	}
	s.Flush(nil)
	if got := s.OffHeap(); got != 0 {
		t.Errorf("after Flush %d bytes are still mapped", got)
	}
	runtime.KeepAlive(s)
}
