package store

// Active expiry, after Redis's: each call visits the shards round-robin and,
// in each, samples expireSamples entries of the volatile list, removes the
// expired ones, and samples again while more than a quarter of a sample was
// expired (so a shard full of expired keys is swept fast, and one with few
// costs one sample). The work of a call is bounded by expireBudget entries
// looked at, about a millisecond, so the caller's loop (ten calls a second in
// node) never holds a shard for long; a caller that sees a large result may
// call again at once.
const (
	expireSamples = 20
	expireRounds  = 16
	expireBudget  = 1 << 14
)

// ExpireCycle removes a bounded sample of expired keys and reports how many it removed.
func (s *Store) ExpireCycle() int {
	now := s.Now()
	removed, budget := 0, expireBudget
	mask := len(s.shards) - 1
	for n := 0; n < len(s.shards) && budget > 0; n++ {
		sh := &s.shards[int(s.expireNext.Add(1)-1)&mask]
		sh.mu.Lock()
		for r := 0; r < expireRounds && budget > 0; r++ {
			looked, expired := s.expireSample(sh, now)
			budget -= looked + 1
			removed += expired
			if expired*4 <= looked {
				break
			}
		}
		sh.mu.Unlock()
	}
	return removed
}

// expireSample looks at up to expireSamples entries of sh's volatile list
// (all of it when it is that short), removing the expired ones. Stale list
// positions it meets are dropped and not counted as looked at.
func (s *Store) expireSample(sh *shard, now int64) (looked, expired int) {
	check := func(pos int) {
		idx := sh.volatile[pos]
		e := sh.entry(idx)
		if e.flags&flagFree != 0 || e.expireAt == 0 {
			sh.unlistVolatile(pos)
			return
		}
		looked++
		if now > e.expireAt && e.pins == 0 {
			sh.unlistVolatile(pos)
			s.drop(sh, idx, true)
			expired++
		}
	}
	if len(sh.volatile) <= expireSamples {
		// Backwards, so that a position refilled from the end is one seen already.
		for pos := len(sh.volatile) - 1; pos >= 0; pos-- {
			check(pos)
		}
		return looked, expired
	}
	for tries := 0; tries < 2*expireSamples && looked < expireSamples && len(sh.volatile) > 0; tries++ {
		check(sh.randn(len(sh.volatile)))
	}
	return looked, expired
}
