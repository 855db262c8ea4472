package store

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

func filled(b *testing.B, n int) *Store {
	s := New(Config{Clock: newFakeClock(start)})
	var h Handle
	for i := range n {
		s.Open(&h, key16(i), nil)
		if err := h.Set(value64(i), KindString, 0); err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
	return s
}

// keyRing holds n prepared keys so the benchmarks measure the store, not fmt.
func keyRing(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = key16(i)
	}
	return keys
}

func BenchmarkGet(b *testing.B) {
	const n = 100_000
	s := filled(b, n)
	keys := keyRing(n)
	var h Handle
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Open(&h, keys[i%n], nil)
		if len(h.Value()) != 64 {
			b.Fatal("missing")
		}
		h.Close()
	}
}

func BenchmarkSetOverwrite(b *testing.B) {
	const n = 100_000
	s := filled(b, n)
	keys := keyRing(n)
	val := value64(7)
	var h Handle
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Open(&h, keys[i%n], nil)
		if err := h.Set(val, KindString, 0); err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}

// BenchmarkSetNew inserts fresh keys; allocations are the amortized growth
// of tables, entry pages and chunks.
func BenchmarkSetNew(b *testing.B) {
	s := New(Config{Clock: newFakeClock(start)})
	val := value64(7)
	key := make([]byte, 0, 16)
	var h Handle
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		key = appendKey16(key[:0], i)
		s.Open(&h, key, nil)
		if err := h.Set(val, KindString, 0); err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}

// BenchmarkSetEvict inserts fresh keys into a full store: each write evicts.
func BenchmarkSetEvict(b *testing.B) {
	const n = 100_000
	s := filled(b, n)
	s.SetMaxMemory(s.Memory())
	keys := keyRing(4 * n)
	val := value64(7)
	var h Handle
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Open(&h, keys[i%len(keys)], nil)
		if err := h.Set(val, KindString, 0); err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}

// BenchmarkParallelGetSet runs 90% reads and 10% overwrites from
// GOMAXPROCS goroutines.
func BenchmarkParallelGetSet(b *testing.B) {
	const n = 100_000
	s := filled(b, n)
	keys := keyRing(n)
	val := value64(7)
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var h Handle
		i := int(seed.Add(1)) * 7919
		for pb.Next() {
			i++
			s.Open(&h, keys[(i*31)%n], nil)
			if i%10 == 0 {
				if err := h.Set(val, KindString, 0); err != nil {
					b.Error(err)
				}
			} else if len(h.Value()) != 64 {
				b.Error("missing")
			}
			h.Close()
		}
	})
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory stores 1M keys of 16 bytes with 64-byte values and reports
// bytes per key: accounted (what MaxMemory counts) and real (Go heap growth).
// Run it with -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	const n = 1_000_000
	keys := keyRing(n)
	val := value64(0)
	for range b.N {
		before := heapInUse()
		s := New(Config{Clock: newFakeClock(start)})
		var h Handle
		for _, k := range keys {
			s.Open(&h, k, nil)
			if err := h.Set(val, KindString, 0); err != nil {
				b.Fatal(err)
			}
			h.Close()
		}
		after := heapInUse()
		b.ReportMetric(float64(s.Memory())/n, "accounted-B/key")
		b.ReportMetric(float64(after-before)/n, "heap-B/key")
		runtime.KeepAlive(s)
	}
}

// BenchmarkGC populates a store and times full collections with it live,
// against the same on an empty heap: the pointer-free layout keeps the
// marking work (and so GC CPU and pauses) independent of the number of keys.
// Run it with -benchtime=1x.
func BenchmarkGC(b *testing.B) {
	const n = 3_000_000
	gcTime := func() (total, pause time.Duration) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		p0 := ms.PauseTotalNs
		const rounds = 5
		t0 := time.Now()
		for range rounds {
			runtime.GC()
		}
		total = time.Since(t0) / rounds
		runtime.ReadMemStats(&ms)
		return total, time.Duration(ms.PauseTotalNs-p0) / (2 * rounds) // two pauses per cycle
	}
	for range b.N {
		emptyGC, emptyPause := gcTime()
		s := New(Config{Clock: newFakeClock(start)})
		var h Handle
		key := make([]byte, 0, 16)
		val := value64(0)
		for i := range n {
			key = appendKey16(key[:0], i)
			s.Open(&h, key, nil)
			if err := h.Set(val, KindString, 0); err != nil {
				b.Fatal(err)
			}
			h.Close()
		}
		fullGC, fullPause := gcTime()
		b.ReportMetric(float64(emptyGC.Microseconds()), "empty-gc-µs")
		b.ReportMetric(float64(fullGC.Microseconds()), "3Mkeys-gc-µs")
		b.ReportMetric(float64(emptyPause.Microseconds()), "empty-pause-µs")
		b.ReportMetric(float64(fullPause.Microseconds()), "3Mkeys-pause-µs")
		runtime.KeepAlive(s)
		debug.FreeOSMemory()
	}
}
