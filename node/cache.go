package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sluicedb/sluice/store"
)

// Cache entries with stale-while-revalidate (DESIGN §4.1). An entry is fresh
// until FreshUntil, then stale until its hard expiry; while stale exactly one
// reader at a time holds a lease to revalidate it and everyone else is served
// the stale value. A miss hands out one lease too (kept in a placeholder
// record that expires with the lease), so a cold key is loaded once.
//
// Leases live in the entry's metadata in the store, so whatever drops or
// replaces the entry (SET, DEL, eviction, expiry, CACHE.SET) revokes them.
// Tokens come from one counter per node and are never reused.

// DefaultLease is how long a lease lasts when CACHE.GET names none.
const DefaultLease = 5 * time.Second

// CacheState is what CACHE.GET tells its caller to do.
type CacheState string

// The five cache states.
const (
	CacheFresh      CacheState = "fresh"      // use the value
	CacheStale      CacheState = "stale"      // use it; someone else revalidates
	CacheRevalidate CacheState = "revalidate" // use it and refresh it: you hold the lease
	CacheMiss       CacheState = "miss"       // load it and fill it: you hold the lease
	CacheWait       CacheState = "wait"       // someone else is loading it; retry shortly
)

// ErrNoLease is CACHE.FILL's error for a token that is no longer valid.
var ErrNoLease = Error("NOLEASE the lease token expired, was superseded, or the key was invalidated")

func init() {
	c := func(name string, arity int, flags Flag, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "cache", Since: "7.0.0", Summary: summary, Handler: h}
	}
	register(
		c("cache.set", -5, flagWrite|flagDenyOOM, "Stores a cache entry that is fresh for FRESH ms, then stale for STALE ms: CACHE.SET key value FRESH ms [STALE ms].", cmdCacheSet),
		// CACHE.GET writes: it may grant a lease.
		c("cache.get", -2, flagWrite|flagFast, "Reads a cache entry and, when it is stale or missing, hands one caller a lease: replies [state, value, token].", cmdCacheGet),
		c("cache.fill", -6, flagWrite|flagDenyOOM, "Stores the value loaded under a lease: CACHE.FILL key token value FRESH ms [STALE ms].", cmdCacheFill),
		c("cache.abort", 3, flagWrite|flagFast, "Returns a lease unused; the stale value stays servable.", cmdCacheAbort),
		c("cache.invalidate", 2, flagWrite|flagFast, "Turns an entry stale now (soft purge) and revokes outstanding leases.", cmdCacheInvalidate),
	)
}

// cacheTimes parses "FRESH ms [STALE ms]" from args.
func cacheTimes(args [][]byte) (fresh, stale int64, msg string) {
	fresh = -1
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return 0, 0, errSyntax
		}
		v, ok := parseInt(args[i+1])
		if !ok {
			return 0, 0, errNotInt
		}
		switch {
		case eqFold(args[i], "fresh"):
			fresh = v
		case eqFold(args[i], "stale"):
			stale = v
		default:
			return 0, 0, errSyntax
		}
		if v < 0 {
			return 0, 0, "ERR FRESH and STALE must not be negative"
		}
	}
	if fresh < 0 {
		return 0, 0, "ERR FRESH is required"
	}
	if fresh == 0 && stale == 0 {
		return 0, 0, "ERR FRESH and STALE cannot both be 0"
	}
	return fresh, stale, ""
}

func cmdCacheSet(c *Client, args [][]byte) {
	fresh, stale, msg := cacheTimes(args[3:])
	if msg != "" {
		c.err(msg)
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if err := c.n.cacheSet(&h, args[1], args[2], fresh, stale); err != nil {
		c.writeErr(err)
		return
	}
	c.w.SimpleString("OK")
}

func (n *Node) cacheSet(h *store.Handle, key, val []byte, fresh, stale int64) error {
	now := h.Now()
	err := h.SetCache(val, now+fresh+stale, store.Cache{FreshUntil: now + fresh})
	n.fills.wake(key)
	return err
}

func cmdCacheGet(c *Client, args [][]byte) {
	lease := DefaultLease.Milliseconds()
	switch {
	case len(args) == 4 && eqFold(args[2], "lease"):
		v, ok := parseInt(args[3])
		if !ok {
			c.err(errNotInt)
			return
		}
		if v <= 0 {
			c.err("ERR LEASE must be positive")
			return
		}
		lease = v
	case len(args) != 2:
		c.err(errSyntax)
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	state, token, err := c.n.cacheGet(&h, lease)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.Array(3)
	c.w.BulkString(string(state))
	if state == CacheMiss || state == CacheWait {
		c.n.stats.misses.Add(c.id, 1)
		c.w.Null()
	} else {
		c.n.stats.hits.Add(c.id, 1)
		c.w.Bulk(h.Value())
	}
	if token == 0 {
		c.w.Null()
	} else {
		c.w.Int(int64(token))
	}
}

// errNotCache is returned by the cache operations on a key of another kind.
var errNotCache = Error(errWrongType)

// cacheGet decides the state of an open key and grants a lease when due.
func (n *Node) cacheGet(h *store.Handle, leaseMs int64) (CacheState, uint64, error) {
	now := h.Now()
	meta, hasMeta := h.Cache()
	leased := hasMeta && meta.LeaseToken != 0 && now < meta.LeaseUntil
	if !h.Exists() {
		if leased {
			return CacheWait, 0, nil
		}
		token := n.leaseSeq.Add(1)
		err := h.UpdateCache(store.Cache{LeaseToken: token, LeaseUntil: now + leaseMs})
		return CacheMiss, token, err
	}
	if h.Kind() != store.KindString {
		return "", 0, errNotCache
	}
	if !hasMeta || now < meta.FreshUntil {
		return CacheFresh, 0, nil
	}
	if leased {
		return CacheStale, 0, nil
	}
	token := n.leaseSeq.Add(1)
	meta.LeaseToken, meta.LeaseUntil = token, now+leaseMs
	return CacheRevalidate, token, h.UpdateCache(meta)
}

func cmdCacheFill(c *Client, args [][]byte) {
	token, ok := parseInt(args[2])
	if !ok || token <= 0 {
		c.err("ERR invalid lease token")
		return
	}
	fresh, stale, msg := cacheTimes(args[4:])
	if msg != "" {
		c.err(msg)
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if err := c.n.cacheFill(&h, args[1], uint64(token), args[3], fresh, stale); err != nil {
		c.writeErr(err)
		return
	}
	c.w.SimpleString("OK")
}

// leaseHeld reports whether token is the live lease of the open key.
func (n *Node) leaseHeld(h *store.Handle, token uint64) bool {
	meta, ok := h.Cache()
	return ok && meta.LeaseToken == token && h.Now() < meta.LeaseUntil
}

func (n *Node) cacheFill(h *store.Handle, key []byte, token uint64, val []byte, fresh, stale int64) error {
	if !n.leaseHeld(h, token) {
		return ErrNoLease
	}
	return n.cacheSet(h, key, val, fresh, stale)
}

func cmdCacheAbort(c *Client, args [][]byte) {
	token, ok := parseInt(args[2])
	if !ok || token <= 0 {
		c.err("ERR invalid lease token")
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if c.n.cacheAbort(&h, args[1], uint64(token)) {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

func (n *Node) cacheAbort(h *store.Handle, key []byte, token uint64) bool {
	if !n.leaseHeld(h, token) {
		return false
	}
	if !h.Exists() {
		h.Delete() // the placeholder of a miss
	} else {
		meta, _ := h.Cache()
		meta.LeaseToken, meta.LeaseUntil = 0, 0
		_ = h.UpdateCache(meta)
	}
	n.fills.wake(key)
	return true
}

func cmdCacheInvalidate(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if c.n.cacheInvalidate(&h) {
		c.w.Int(1)
	} else {
		c.w.Int(0)
	}
}

func (n *Node) cacheInvalidate(h *store.Handle) bool {
	if !h.Exists() {
		if _, leased := h.Cache(); leased {
			h.Delete() // a miss's lease dies with the invalidation
		}
		return false
	}
	if h.Kind() != store.KindString {
		return false
	}
	_ = h.UpdateCache(store.Cache{FreshUntil: h.Now()})
	return true
}

// The Go API.

// CacheResult is CACHE.GET's answer.
type CacheResult struct {
	State CacheState
	Value []byte // a copy; nil for miss and wait
	Token uint64 // the lease, for revalidate and miss
}

// CacheGet is CACHE.GET: it reads key and hands out a lease of the given
// duration (DefaultLease when 0) when the entry is stale or missing.
func (n *Node) CacheGet(ctx context.Context, key string, lease time.Duration) (CacheResult, error) {
	if err := ctx.Err(); err != nil {
		return CacheResult{}, err
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	if n.remote(key) {
		v, err := n.Do(ctx, "CACHE.GET", key, "LEASE", max(lease.Milliseconds(), 1))
		if err != nil {
			return CacheResult{}, replyError(err)
		}
		r := v.([]any)
		res := CacheResult{State: CacheState(r[0].([]byte))}
		if b, ok := r[1].([]byte); ok {
			res.Value = b
		}
		if t, ok := r[2].(int64); ok {
			res.Token = uint64(t)
		}
		return res, nil
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	state, token, err := n.cacheGet(&h, max(lease.Milliseconds(), 1))
	if err != nil {
		return CacheResult{}, err
	}
	r := CacheResult{State: state, Token: token}
	if state != CacheMiss && state != CacheWait {
		r.Value = append([]byte(nil), h.Value()...)
	}
	return r, nil
}

// CacheSet is CACHE.SET: the value is fresh for fresh, then stale for stale.
func (n *Node) CacheSet(ctx context.Context, key string, val []byte, fresh, stale time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.remote(key) {
		_, err := n.Do(ctx, "CACHE.SET", key, val, "FRESH", fresh.Milliseconds(), "STALE", stale.Milliseconds())
		return replyError(err)
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	return n.cacheSet(&h, keyBytes(key), val, fresh.Milliseconds(), stale.Milliseconds())
}

// CacheFill is CACHE.FILL: it stores the value loaded under the lease token,
// or returns ErrNoLease when the lease is gone.
func (n *Node) CacheFill(ctx context.Context, key string, token uint64, val []byte, fresh, stale time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.remote(key) {
		_, err := n.Do(ctx, "CACHE.FILL", key, token, val, "FRESH", fresh.Milliseconds(), "STALE", stale.Milliseconds())
		return replyError(err)
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	return n.cacheFill(&h, keyBytes(key), token, val, fresh.Milliseconds(), stale.Milliseconds())
}

// CacheAbort is CACHE.ABORT: it returns the lease and reports whether it was live.
func (n *Node) CacheAbort(ctx context.Context, key string, token uint64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if n.remote(key) {
		v, err := n.Do(ctx, "CACHE.ABORT", key, token)
		return err == nil && v == int64(1), replyError(err)
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	return n.cacheAbort(&h, keyBytes(key), token), nil
}

// CacheInvalidate is CACHE.INVALIDATE: the entry turns stale now and its
// leases die; it reports whether the key existed.
func (n *Node) CacheInvalidate(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if n.remote(key) {
		v, err := n.Do(ctx, "CACHE.INVALIDATE", key)
		return err == nil && v == int64(1), replyError(err)
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	return n.cacheInvalidate(&h), nil
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	Fresh time.Duration // how long a loaded value is fresh (required)
	Stale time.Duration // how long it is served stale after that
	Lease time.Duration // how long a loader may take before another caller may try; DefaultLease when 0
	// OnError is told about loader errors of background refreshes, which
	// leave the stale value in place. Errors of a foreground load (a miss)
	// are returned by Fetch.
	OnError func(key string, err error)
}

// Fetch returns the value of key, loading it with loader when needed, such
// that only one loader runs per key at a time: on a miss one caller loads and
// the others wait for its result; on a stale hit the stale value is returned at
// once and one background refresh runs. A failed background refresh keeps the
// stale value (stale-if-error) and is reported to OnError.
func (n *Node) Fetch(ctx context.Context, key string, loader func(ctx context.Context) ([]byte, error), opts FetchOptions) ([]byte, error) {
	if opts.Fresh <= 0 {
		return nil, errors.New("node: FetchOptions.Fresh must be positive")
	}
	backoff := time.Millisecond
	for {
		r, err := n.CacheGet(ctx, key, opts.Lease)
		if err != nil {
			return nil, err
		}
		switch r.State {
		case CacheFresh, CacheStale:
			return r.Value, nil
		case CacheRevalidate:
			go n.refresh(key, r.Token, loader, opts)
			return r.Value, nil
		case CacheMiss:
			v, err := loader(ctx)
			if err != nil {
				_, _ = n.CacheAbort(context.WithoutCancel(ctx), key, r.Token)
				return nil, err
			}
			if err := n.CacheFill(context.WithoutCancel(ctx), key, r.Token, v, opts.Fresh, opts.Stale); err != nil && err != ErrNoLease {
				return nil, err
			}
			return v, nil
		}
		// CacheWait: another caller is loading. A fill in this process wakes
		// us; a remote filler is noticed by polling with a capped backoff,
		// which also covers a fill that landed before we started waiting.
		if err := n.fills.wait(ctx, key, backoff); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

func (n *Node) refresh(key string, token uint64, loader func(ctx context.Context) ([]byte, error), opts FetchOptions) {
	lease := opts.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	ctx, cancel := context.WithTimeout(context.Background(), lease)
	defer cancel()
	v, err := loader(ctx)
	if err == nil {
		err = n.CacheFill(ctx, key, token, v, opts.Fresh, opts.Stale)
	} else {
		_, _ = n.CacheAbort(context.Background(), key, token)
	}
	if err != nil && opts.OnError != nil {
		opts.OnError(key, err)
	}
}

// fillWaiters wakes Fetch callers waiting for a key to be filled in this process.
type fillWaiters struct {
	mu    sync.Mutex
	chans map[string]*fillWait
}

type fillWait struct {
	ch   chan struct{}
	refs int
}

// wait blocks until the key's next local fill or abort, at most d, or until ctx ends.
func (f *fillWaiters) wait(ctx context.Context, key string, d time.Duration) error {
	f.mu.Lock()
	if f.chans == nil {
		f.chans = make(map[string]*fillWait)
	}
	w := f.chans[key]
	if w == nil {
		w = &fillWait{ch: make(chan struct{})}
		f.chans[key] = w
	}
	w.refs++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if w.refs--; w.refs == 0 && f.chans[key] == w {
			delete(f.chans, key)
		}
		f.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.ch:
	case <-t.C:
	}
	return nil
}

// wake releases everyone waiting on key.
func (f *fillWaiters) wake(key []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.chans[string(key)]; w != nil {
		close(w.ch)
		delete(f.chans, string(key))
	}
}
