package store

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Locks is a set of shard locks held together (see LockKeys). It is a
// bitmap of shard indexes, so holding it allocates nothing; its zero value
// holds nothing.
type Locks struct {
	s    *Store
	held [MaxShards / 64]uint64
}

// has reports whether l holds shard i; a nil Locks holds nothing.
func (l *Locks) has(i int) bool {
	return l != nil && l.held[i>>6]&(1<<(i&63)) != 0
}

// highest returns the highest shard index l holds, or -1.
func (l *Locks) highest() int {
	if l == nil {
		return -1
	}
	for w := len(l.held) - 1; w >= 0; w-- {
		if l.held[w] != 0 {
			return w*64 + 63 - bits.LeadingZeros64(l.held[w])
		}
	}
	return -1
}

// LockKeys locks the shards of keys in a fixed order, so that operations on
// several keys are atomic. Pass l to Open and the keyspace calls; Unlock ends it.
//
// Shards are locked in ascending index order, the one order every blocking
// acquisition in the store follows, so two LockKeys never deadlock. l must
// not hold anything already (it panics otherwise: adding locks to a held set
// could break the order).
func (s *Store) LockKeys(l *Locks, keys [][]byte) {
	l.start(s)
	for _, k := range keys {
		i := s.shardOf(xxhash.Sum64(k))
		l.held[i>>6] |= 1 << (i & 63)
	}
	for w, word := range l.held {
		for ; word != 0; word &= word - 1 {
			s.shards[w*64+bits.TrailingZeros64(word)].mu.Lock()
		}
	}
}

// LockAll locks every shard.
func (s *Store) LockAll(l *Locks) {
	l.start(s)
	for i := range s.shards {
		l.held[i>>6] |= 1 << (i & 63)
		s.shards[i].mu.Lock()
	}
}

func (l *Locks) start(s *Store) {
	if l.highest() >= 0 {
		panic("store: LockKeys or LockAll on Locks already held")
	}
	l.s = s
}

// Unlock releases what LockKeys or LockAll took. Handles opened with l must
// be closed first.
func (l *Locks) Unlock() {
	for w, word := range l.held {
		for ; word != 0; word &= word - 1 {
			l.s.shards[w*64+bits.TrailingZeros64(word)].mu.Unlock()
		}
		l.held[w] = 0
	}
	l.s = nil
}
