// Package store is a node's local memory: a sharded, pointer-free index over
// byte arenas, with expiry, eviction under a memory limit,
// stale-while-revalidate metadata and atomic read-modify-write of single keys.
//
// Everything a command does to a key happens through a Handle, which holds the
// key's shard lock from Open to Close. Several keys are changed atomically by
// locking their shards first with LockKeys (or every shard with LockAll) and
// passing the Locks to Open, which then does not lock again.
//
// The store knows nothing about the network or about commands; times come from
// the Clock in its Config so tests can drive them exactly.
//
// # Layout
//
// A key's xxhash picks its shard (top bits) and its slot in the shard's table
// (low 32 bits). Each shard has its own mutex and three structures, none of
// which holds pointers, so the garbage collector marks a few large objects per
// shard instead of an object per key:
//
//   - the index: an open-addressing table of 16-byte slots (hash tag, entry
//     index, the record's place), linear probing, backward-shift deletion
//     (see shard);
//   - the entries: 32-byte structs in pages of 2048, with expiry, version,
//     kind, cluster slot, LRU clock, LFU counter and the record's location;
//     an entry's index never changes while it lives, which the Scan cursor
//     uses (see entry);
//   - the arena: records (header, optional cache metadata, key, value) in
//     size classes carved from chunks, with in-band free lists; records over
//     64 KiB get their own allocation (see arena).
//
// A fourth, the volatile list, holds the indexes of entries with an expiry,
// for active expiry and the volatile-* policies.
//
// Memory: 1M keys of 16 bytes with 64-byte values cost 132 accounted bytes
// per key (32 entry + 12 index share + 88 record) and 140 bytes of Go heap per
// key (BenchmarkMemory). Redis 7.0.15 on the same machine takes 168 bytes
// (used_memory) for the same data. Freed slots are reused by later records
// of their class and entries by later keys; they go back to the Go heap only
// on Flush, so a workload that moves from small to large values keeps the
// small slots (the slab allocator's usual trade, as in memcached).
//
// Garbage collection with 3M keys live (BenchmarkGC): 1.5 to 2 ms of marking
// CPU per cycle against 0.15 ms on an empty heap and 550 ms or more for the
// same keys in a map[string][]byte; the stop-the-world phases stay at tens of
// microseconds, as on an empty heap.
//
// # Expiry and eviction
//
// Expired keys are removed when opened and by ExpireCycle, which samples the
// volatile lists as Redis's active expiry does. Writes that would pass
// MaxMemory evict by sampling (see evict.go). On a Zipf(0.99) stream over 1M
// keys with room for 100k (BenchmarkHitRatio, second half of 10M requests)
// the hit ratios are: allkeys-lfu 80.8%, allkeys-lru 76.5%, allkeys-random
// 73.9%, where keeping the 100k most popular keys would give 83.0%.
//
// # Costs
//
// On a shared 2-core Xeon VM, with 100k keys (go test -bench . -benchmem):
// Get 165 ns, overwrite of the same size 240 ns, both with 0 allocations;
// Set of a new key 480 ns, with 0 allocations but about 200 bytes of amortized
// growth (tables, pages, chunks); Set of a new key into a full store (one
// eviction each) 600 ns; 90/10 Get/Set from two goroutines 300 ns per
// operation. Most of it is cache misses on the table, the entry and the
// record.
package store
