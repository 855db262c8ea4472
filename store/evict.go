package store

import "github.com/cespare/xxhash/v2"

// Eviction samples, as Redis does: a write that would pass MaxMemory looks at
// evictSamples random entries of its own shard and as many of one other
// shard (taken with TryLock, or already held through the caller's Locks),
// and removes the best victim by the policy. Sampling two shards keeps the
// shards' sizes in balance (a shard that holds more than its share offers
// worse victims and loses more of them) and lets a write proceed when its own
// shard has nothing to give. Only when both come back empty are the other
// shards tried one by one.
//
// Every entry carries both an LRU clock and an LFU counter, so that a policy
// change takes effect at once. The LFU counter is Redis's: it starts at
// lfuInitVal, grows with probability 1/((c-lfuInitVal)*lfuLogFactor+1), so
// that it reaches 255 after about a million accesses, and loses one for each
// minute without access. Ties between LFU counters, which are common among
// the newest entries, go to the least recently used, so under LFU a new
// entry that is not read again leaves before anything read twice: the policy
// behaves like a segmented LRU with frequency on top, which is why it beats
// plain LRU on skewed (Zipf) workloads; see TestHitRatio.
const (
	evictSamples    = 8
	lfuInitVal      = 5
	lfuLogFactor    = 10
	lfuDecayMinutes = 1
)

// lfuMinutes is the LFU clock: Unix minutes mod 2^16.
func lfuMinutes(now int64) uint16 { return uint16(now / 60000) }

// lfuDecayed returns e's LFU counter after decay.
func lfuDecayed(e *entry, nowMin uint16) uint8 {
	periods := int(nowMin-e.ltime) / lfuDecayMinutes
	if periods >= int(e.freq) {
		return 0
	}
	return e.freq - uint8(periods)
}

// lfuIncr increments an LFU counter logarithmically.
func (sh *shard) lfuIncr(c uint8) uint8 {
	if c == 255 {
		return c
	}
	base := max(int(c)-lfuInitVal, 0)
	if base == 0 || sh.randn(base*lfuLogFactor+1) == 0 {
		c++
	}
	return c
}

// touch records an access to e.
func (sh *shard) touch(e *entry, now int64) {
	sh.tick++
	e.atime = sh.tick
	m := lfuMinutes(now)
	e.freq = sh.lfuIncr(lfuDecayed(e, m))
	e.ltime = m
}

// candidate is the best victim found so far; a higher score is evicted first.
type candidate struct {
	sh    *shard
	idx   uint32
	score uint64
	found bool
}

// score rates e as a victim under pol. An expired entry is always the best.
// The LRU idle time is counted in accesses to the entry's shard, which keeps
// it comparable between shards that see similar traffic.
func score(sh *shard, e *entry, pol Policy, now int64, nowMin uint16) uint64 {
	if e.expireAt != 0 && now > e.expireAt {
		return ^uint64(0)
	}
	idle := uint64(sh.tick - e.atime)
	switch pol {
	case AllKeysLRU, VolatileLRU:
		return idle
	case AllKeysRandom, VolatileRandom:
		return 1
	case VolatileTTL:
		return ^uint64(e.expireAt) >> 1
	}
	return uint64(255-lfuDecayed(e, nowMin))<<32 | idle
}

// sample looks at up to evictSamples entries of sh (which the caller holds)
// and updates best.
func (s *Store) sample(sh *shard, pol Policy, now int64, best *candidate) {
	nowMin := lfuMinutes(now)
	got := 0
	if pol.volatile() {
		for tries := 0; tries < 2*evictSamples && got < evictSamples && len(sh.volatile) > 0; tries++ {
			pos := sh.randn(len(sh.volatile))
			idx := sh.volatile[pos]
			e := sh.entry(idx)
			if e.flags&flagFree != 0 || e.expireAt == 0 {
				sh.unlistVolatile(pos)
				continue
			}
			if e.pins != 0 {
				continue
			}
			got++
			if sc := score(sh, e, pol, now, nowMin); !best.found || sc > best.score {
				*best = candidate{sh, idx, sc, true}
			}
		}
		return
	}
	if sh.used == 0 {
		return
	}
	for tries := 0; tries < 4*evictSamples && got < evictSamples; tries++ {
		idx := uint32(sh.randn(int(sh.nEntries)))
		e := sh.entry(idx)
		if e.flags&flagFree != 0 || e.pins != 0 {
			continue
		}
		got++
		if sc := score(sh, e, pol, now, nowMin); !best.found || sc > best.score {
			*best = candidate{sh, idx, sc, true}
		}
	}
}

// evictOne removes one entry by the policy to make room for a write into
// shard own (index oi), which the caller holds, as it holds the shards in
// locks. It reports whether it removed anything.
func (s *Store) evictOne(own *shard, oi int, locks *Locks, now int64) bool {
	pol := s.policyNow()
	if pol == NoEviction {
		return false
	}
	var best candidate
	s.sample(own, pol, now, &best)
	if n := len(s.shards); n > 1 {
		j := int(s.evictNext.Add(1)) & (n - 1)
		if j == oi {
			j = (j + 1) & (n - 1)
		}
		if s.sampleOther(j, locks, pol, now, &best) {
			return true
		}
	}
	if best.found {
		s.evictCandidate(&best, now)
		return true
	}
	return s.evictAnywhere(oi, locks, pol, now)
}

// sampleOther samples shard j, if it is held in locks or free to take. When
// its best entry beats best, it evicts that entry and reports true.
func (s *Store) sampleOther(j int, locks *Locks, pol Policy, now int64, best *candidate) bool {
	sh := &s.shards[j]
	held := locks.has(j)
	if !held && !sh.mu.TryLock() {
		return false
	}
	s.sample(sh, pol, now, best)
	evicted := best.found && best.sh == sh
	if evicted {
		s.evictCandidate(best, now)
	}
	if !held {
		sh.mu.Unlock()
	}
	return evicted
}

// evictAnywhere is the slow path, when neither the writer's shard nor the
// one sampled with it had a candidate: it tries every other shard, first
// with TryLock, then, for shards above all the caller holds (where waiting
// keeps the ascending lock order), with Lock.
func (s *Store) evictAnywhere(oi int, locks *Locks, pol Policy, now int64) bool {
	n := len(s.shards)
	for k := 1; k < n; k++ {
		var best candidate
		if s.sampleOther((oi+k)&(n-1), locks, pol, now, &best) {
			return true
		}
	}
	for j := max(oi, locks.highest()) + 1; j < n; j++ {
		if locks.has(j) {
			continue
		}
		sh := &s.shards[j]
		sh.mu.Lock()
		var best candidate
		s.sample(sh, pol, now, &best)
		if best.found {
			s.evictCandidate(&best, now)
		}
		sh.mu.Unlock()
		if best.found {
			return true
		}
	}
	return false
}

// evictCandidate removes the chosen victim: as expired if it is, else as evicted.
func (s *Store) evictCandidate(c *candidate, now int64) {
	e := c.sh.entry(c.idx)
	s.drop(c.sh, c.idx, e.expireAt != 0 && now > e.expireAt)
}

// drop removes entry idx of sh on the store's own initiative (expiry or
// eviction): it counts the removal and reports it to OnRemove, except for
// placeholders, which are not keys.
func (s *Store) drop(sh *shard, idx uint32, expired bool) {
	e := sh.entry(idx)
	key := sh.key(e)
	tag := uint32(xxhash.Sum64(key))
	if Kind(e.flags&kindMask) != KindNone {
		if expired {
			s.expired.Add(1)
		} else {
			s.evicted.Add(1)
		}
		if s.onRemove != nil {
			s.onRemove(key)
		}
	}
	s.remove(sh, idx, tag)
}
