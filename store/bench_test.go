package store

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
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

// gcCost forces rounds full collections and returns, per collection, the
// wall time of runtime.GC (marking and sweeping), the CPU time spent marking,
// and the longest stop-the-world pause.
func gcCost(rounds int) (wall, markCPU, maxPause time.Duration) {
	names := []string{
		"/cpu/classes/gc/mark/assist:cpu-seconds",
		"/cpu/classes/gc/mark/dedicated:cpu-seconds",
		"/cpu/classes/gc/mark/idle:cpu-seconds",
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	mark := func() float64 {
		metrics.Read(samples)
		total := 0.0
		for _, s := range samples {
			total += s.Value.Float64()
		}
		return total
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	first := ms.NumGC
	m0 := mark()
	t0 := time.Now()
	for range rounds {
		runtime.GC()
	}
	wall = time.Since(t0) / time.Duration(rounds)
	markCPU = time.Duration((mark() - m0) * 1e9 / float64(rounds))
	runtime.ReadMemStats(&ms)
	for n := first + 1; n <= ms.NumGC; n++ {
		maxPause = max(maxPause, time.Duration(ms.PauseNs[(n+255)%256]))
	}
	return wall, markCPU, maxPause
}

// BenchmarkGC times full collections with 3M keys live: in the store, and in
// a map[string][]byte for comparison, against an empty heap. The store's
// pages, chunks and tables hold no pointers, so marking does not grow with
// the number of keys (only sweeping its pages does), and the stop-the-world
// pauses stay as short as on an empty heap. Run it with -benchtime=1x.
func BenchmarkGC(b *testing.B) {
	const n = 3_000_000
	report := func(b *testing.B) {
		wall, mark, pause := gcCost(5)
		b.ReportMetric(float64(wall.Microseconds())/1000, "gc-ms")
		b.ReportMetric(float64(mark.Microseconds())/1000, "mark-cpu-ms")
		b.ReportMetric(float64(pause.Microseconds()), "max-pause-µs")
	}
	b.Run("empty", func(b *testing.B) {
		for range b.N {
			report(b)
		}
	})
	b.Run("store-3M", func(b *testing.B) {
		for range b.N {
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
			report(b)
			runtime.KeepAlive(s)
		}
	})
	b.Run("map-3M", func(b *testing.B) {
		for range b.N {
			m := make(map[string][]byte)
			for i := range n {
				m[string(key16(i))] = value64(i)
			}
			report(b)
			runtime.KeepAlive(m)
		}
	})
	debug.FreeOSMemory()
}

// BenchmarkForEachInSlot is one hand-off pass over a store of 1M keys in
// 16384 slots: its cost is that of walking every entry.
func BenchmarkForEachInSlots(b *testing.B) {
	const n = 1_000_000
	s := New(Config{Clock: newFakeClock(start), Slot: func(k []byte) uint16 { return uint16(hashOf(k) % 16384) }})
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
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		found := 0
		slot := uint16(i % 16384)
		s.ForEachInSlots(func(s uint16) bool { return s == slot }, func(*Entry) { found++ }, nil)
		if found == 0 {
			b.Fatal("empty slot")
		}
	}
}
