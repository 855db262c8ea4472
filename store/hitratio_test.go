package store

import (
	"math"
	"math/rand/v2"
	"testing"
)

// zipf draws from a Zipf distribution over [0, n) with any exponent theta,
// including theta < 1, which math/rand's Zipf does not allow (the method of
// Gray et al., "Quickly generating billion-record synthetic databases", as
// YCSB uses it).
type zipf struct {
	n                  float64
	theta, alpha, eta  float64
	zetan, halfPowThet float64
	rng                *rand.Rand
}

func newZipf(n int, theta float64, seed uint64) *zipf {
	zeta := func(n int) float64 {
		sum := 0.0
		for i := 1; i <= n; i++ {
			sum += 1 / math.Pow(float64(i), theta)
		}
		return sum
	}
	zetan := zeta(n)
	return &zipf{
		n:           float64(n),
		theta:       theta,
		alpha:       1 / (1 - theta),
		zetan:       zetan,
		eta:         (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2)/zetan),
		halfPowThet: 1 + math.Pow(0.5, theta),
		rng:         rand.New(rand.NewPCG(seed, seed^0x5851F42D4C957F2D)),
	}
}

func (z *zipf) next() int {
	u := z.rng.Float64()
	uz := u * z.zetan
	switch {
	case uz < 1:
		return 0
	case uz < z.halfPowThet:
		return 1
	}
	return int(z.n * math.Pow(z.eta*u-z.eta+1, z.alpha))
}

// hitRatio replays a Zipf(0.99) stream of ops reads over keys distinct keys
// against a store with room for capacity of them, storing each miss as a
// cache would, and returns the hit ratio of the second half of the stream.
func hitRatio(pol Policy, keys, capacity, ops int) float64 {
	s := New(Config{MaxMemory: int64(capacity) * perKey, Policy: pol, Clock: newFakeClock(start)})
	z := newZipf(keys, 0.99, 42)
	var h Handle
	hits := 0
	key := make([]byte, 0, 16)
	val := value64(0)
	for i := range ops {
		id := z.next()
		key = appendKey16(key[:0], id)
		s.Open(&h, key, nil)
		if h.Exists() {
			if i >= ops/2 {
				hits++
			}
		} else if err := h.Set(val, KindString, 0); err != nil {
			panic(err)
		}
		h.Close()
	}
	return float64(hits) / float64(ops-ops/2)
}

// TestHitRatio checks that the default policy beats LRU on a skewed
// workload. Figures (100k keys, room for 10k, 2M requests): see the package
// documentation for the 1M-key run of BenchmarkHitRatio.
func TestHitRatio(t *testing.T) {
	keys, capacity, ops := 100_000, 10_000, 2_000_000
	if testing.Short() || raceEnabled {
		keys, capacity, ops = 20_000, 2_000, 400_000
	}
	got := map[Policy]float64{}
	for _, pol := range []Policy{AllKeysLFU, AllKeysLRU, AllKeysRandom} {
		got[pol] = hitRatio(pol, keys, capacity, ops)
		t.Logf("%-14v hit ratio %.4f", pol, got[pol])
	}
	if got[AllKeysLFU] <= got[AllKeysLRU] {
		t.Errorf("allkeys-lfu (%.4f) does not beat allkeys-lru (%.4f)", got[AllKeysLFU], got[AllKeysLRU])
	}
	if got[AllKeysLRU] <= got[AllKeysRandom] {
		t.Errorf("allkeys-lru (%.4f) does not beat allkeys-random (%.4f)", got[AllKeysLRU], got[AllKeysRandom])
	}
}

// BenchmarkHitRatio is the full-size run: 1M keys, room for 100k (10%),
// 10M requests. Run it with -benchtime=1x.
func BenchmarkHitRatio(b *testing.B) {
	for _, pol := range []Policy{AllKeysLFU, AllKeysLRU, AllKeysRandom} {
		b.Run(pol.String(), func(b *testing.B) {
			var r float64
			for range b.N {
				r = hitRatio(pol, 1_000_000, 100_000, 10_000_000)
			}
			b.ReportMetric(100*r, "hit%")
		})
	}
}
