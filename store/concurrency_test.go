package store

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentIncrements runs read-modify-write increments from many
// goroutines on a few keys: the Handle's lock must make each one atomic.
func TestConcurrentIncrements(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 4})
	const workers, incs, keys = 8, 2000, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var h Handle
			buf := make([]byte, 0, 20)
			for i := range incs {
				s.Open(&h, []byte(fmt.Sprint("counter", (w+i)%keys)), nil)
				n, err := strconv.Atoi(string(trimSpace(h.Value())))
				if h.Exists() && err != nil {
					t.Error(err)
				}
				buf = strconv.AppendInt(buf[:0], int64(n+1), 10)
				// Vary the size so records move between classes.
				if i%10 == 0 {
					buf = append(buf, "                                        "[:w]...)
				}
				if err := h.Set(buf, KindString, 0); err != nil {
					t.Error(err)
				}
				h.Close()
			}
		})
	}
	wg.Wait()
	total := 0
	for k := range keys {
		v, _ := get(s, fmt.Sprint("counter", k))
		n, err := strconv.Atoi(string(trimSpace(v)))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != workers*incs {
		t.Fatalf("total %d, want %d: updates lost", total, workers*incs)
	}
	checkConsistent(t, s)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// TestConcurrentTransfers moves units between random pairs of accounts under
// LockKeys, with a memory limit that forces eviction of other keys across
// shards meanwhile: the sum of the accounts never changes, and nothing
// deadlocks.
func TestConcurrentTransfers(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 8, MaxMemory: 3000 * perKey, Policy: AllKeysLRU})
	const accounts, workers, moves = 16, 6, 1500
	acct := func(i int) []byte { return []byte(fmt.Sprint("acct", i)) }
	var l Locks
	s.LockKeys(&l, nil)
	l.Unlock()
	for i := range accounts {
		mustSet(t, s, string(acct(i)), "1000", 0)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var l Locks
			var a, b Handle
			keys := make([][]byte, 2)
			rng := uint64(w + 1)
			next := func(n int) int {
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				return int(rng % uint64(n))
			}
			for i := range moves {
				x, y := next(accounts), next(accounts)
				if x == y {
					y = (y + 1) % accounts
				}
				keys[0], keys[1] = acct(x), acct(y)
				s.LockKeys(&l, keys)
				s.Open(&a, keys[0], &l)
				s.Open(&b, keys[1], &l)
				av, _ := strconv.Atoi(string(a.Value()))
				bv, _ := strconv.Atoi(string(b.Value()))
				if a.Set(strconv.AppendInt(nil, int64(av-1), 10), KindString, 0) != nil ||
					b.Set(strconv.AppendInt(nil, int64(bv+1), 10), KindString, 0) != nil {
					t.Error("transfer write failed")
				}
				a.Close()
				b.Close()
				l.Unlock()
				// Filler that keeps eviction busy in every shard.
				if err := set(s, string(key16(w*moves+i)), string(value64(i)), 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// Meanwhile, whole-keyspace readers.
	wg.Go(func() {
		for range 20 {
			scanAll(s, 100, nil)
			s.ExpireCycle()
			s.RandomKey(nil, nil)
		}
	})
	wg.Wait()
	sum := 0
	for i := range accounts {
		v, ok := get(s, string(acct(i)))
		if !ok {
			// An account can be evicted like any key; the test sizes memory so it is not.
			t.Fatalf("account %d evicted", i)
		}
		n, _ := strconv.Atoi(string(v))
		sum += n
	}
	if sum != accounts*1000 {
		t.Fatalf("sum %d, want %d", sum, accounts*1000)
	}
	checkConsistent(t, s)
}

// TestConcurrentEvictionNoEviction fills a small store from many goroutines:
// the limit holds exactly, and noeviction refuses rather than overshoots.
func TestConcurrentEviction(t *testing.T) {
	for _, pol := range []Policy{AllKeysLFU, VolatileRandom, NoEviction} {
		t.Run(pol.String(), func(t *testing.T) {
			limit := 500 * perKey
			s, clk := newTest(t, Config{Shards: 4, MaxMemory: limit, Policy: pol})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := range 2000 {
						k := w*10000 + i
						err := set(s, string(key16(k)), string(value64(k)), clk.nowMS()+1_000_000)
						if err != nil && pol != NoEviction {
							t.Error(err)
							return
						}
						if m := s.Memory(); m > limit {
							t.Errorf("memory %d over limit %d", m, limit)
							return
						}
					}
				})
			}
			wg.Wait()
			checkConsistent(t, s)
		})
	}
}
