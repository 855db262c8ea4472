package node

import "time"

// FastBatch runs the fast-path reads of one request of a protocol server
// (GET and CACHE.GET, as FastGet and FastCacheGet) and pays what does not
// depend on the key once for all of them instead of once per key: the
// client's state (authenticated, MULTI, CLIENT REPLY, tracking), its user's
// permission on the command and the OOM check, the activity time, the
// timing sample, and the counters other cores share: the command's call
// count and keyspace hits and misses are counted in the batch and added
// once, at End. Per key it still checks the user's key patterns (unless
// the user has every key) and the key slot's owner in the current slot
// table, and opens the key in the store.
//
// The guarantees are FastGet's: what the batch declines (FastSlow) has not
// run and has changed nothing, and once End has returned, INFO's call
// counts and keyspace hits and misses include exactly the operations that
// ran. The client's user is read when the batch starts: an ACL change made
// while a batch runs applies from the client's next batch (or command), as
// if the change had come just after the request.
//
// One batch in timingSample is timed, from its first operation to End, so
// the caller's work on the results in between counts, as a reply's writing
// counts in a command's time; that time is shared among the operations the
// batch ran (the latency histograms observe their mean, once per batch).
//
// Call Client.BeginFast, then Get and CacheGet for each operation, and End
// before the client runs anything else (Exec, which may change what the batch
// checked once: AUTH, MULTI, CLIENT REPLY) and when the request is done.
// After End the batch may go on: its next operation starts a new one. A
// FastBatch is used by the client's goroutine only; reusing one allocates
// nothing.
type FastBatch struct {
	c *Client

	open bool // the client-level checks are done; counting
	slow bool // the client's state declines every operation until End

	get      *Command // GET and CACHE.GET (fastCommands)
	cacheGet *Command

	user    *aclUser
	allKeys bool // the user has every key: no per-key ACL check
	getOK   bool // the client may run GET (command permission, OOM)
	cacheOK bool // ... CACHE.GET
	follows bool // the client follows redirects

	timed bool
	start time.Time
	now   int64 // the store's time for the batch's keys (Store.Now)

	gets, cacheGets int64 // operations run
	hits, misses    int64
	last            *Command
}

// BeginFast starts a batch of fast-path reads for the client in b.
func (c *Client) BeginFast(b *FastBatch) {
	if b.open {
		b.End()
	}
	*b = FastBatch{c: c}
}

// begin makes the client-level checks of fastEnter and starts counting.
func (b *FastBatch) begin() {
	c := b.c
	b.open = true
	b.get, b.cacheGet = fastCommands()
	if !c.authed || c.multi != nil || c.replyOff || c.skipNext || c.track.on || c.locks != nil {
		b.slow = true
		return
	}
	u := c.user.Load().user()
	b.user, b.allKeys = u, u.allKeys
	b.getOK = c.fastAllowed(u, b.get)
	b.cacheOK = c.fastAllowed(u, b.cacheGet)
	if !b.getOK && !b.cacheOK {
		b.slow = true
		return
	}
	b.follows = c.followsRedirects()
	// One reading of the store's clock for the batch: the batch's keys
	// expire, and its cache entries turn stale, as of its start.
	b.now = c.n.store.Now()
	c.lastActive.Store(c.n.coarseMs.Load())
	c.ncmd++
	if b.timed = c.ncmd%timingSample == 0; b.timed {
		b.start = time.Now()
	}
}

// fastAllowed reports whether the client's user u may run cmd (a command
// with one key) on some key, and the OOM check lets it run.
func (c *Client) fastAllowed(u *aclUser, cmd *Command) bool {
	if !u.allCommands && !u.allowed[cmd.id] {
		return false // Exec answers NOPERM
	}
	if !u.allKeys && cmd.FirstKey != 1 {
		return false // not a one-key command: let Exec decide
	}
	return cmd.Flags&flagDenyOOM == 0 || !c.n.overMemory()
}

// enter applies the per-key checks of fastEnter, and reports whether the
// batch may run GET (CACHE.GET when cache) on key here.
func (b *FastBatch) enter(cache bool, key []byte) (FastResult, bool) {
	if !b.open {
		b.begin()
	}
	cmd, ok := b.get, b.getOK
	if cache {
		cmd, ok = b.cacheGet, b.cacheOK
	}
	if b.slow || !ok {
		return FastResult{Status: FastSlow}, false
	}
	if !b.allKeys {
		args := [2][]byte{nil, key}
		if b.user.permitted(cmd, args[:]) != "" {
			return FastResult{Status: FastSlow}, false // Exec answers NOPERM
		}
	}
	return b.c.fastRoute(key, b.follows)
}

// Get runs GET key as FastGet does, counting it in the batch.
func (b *FastBatch) Get(dst, key []byte) ([]byte, FastResult) {
	if r, ok := b.enter(false, key); !ok {
		return dst, r
	}
	dst, found, slow := b.c.fastGetValue(dst, key, b.now)
	switch {
	case slow:
		return dst, FastResult{Status: FastSlow}
	case found:
		b.hits++
	default:
		b.misses++
	}
	b.gets++
	b.last = b.get
	return dst, FastResult{Found: found}
}

// CacheGet runs CACHE.GET key as FastCacheGet does, counting it in the
// batch.
func (b *FastBatch) CacheGet(dst, key []byte, leaseMs int64) ([]byte, FastResult) {
	if leaseMs < 0 {
		return dst, FastResult{Status: FastSlow}
	}
	if r, ok := b.enter(true, key); !ok {
		return dst, r
	}
	dst, state, slow := b.c.fastCacheValue(dst, key, b.now)
	switch {
	case slow:
		return dst, FastResult{Status: FastSlow}
	case state == CacheWait:
		b.misses++
	default:
		b.hits++
	}
	b.cacheGets++
	b.last = b.cacheGet
	return dst, FastResult{Found: state != CacheWait, State: state}
}

// End accounts for the operations the batch ran: their call counts, time,
// keyspace hits and misses, and the client's last command. The batch's
// next operation, if any, starts a new batch.
func (b *FastBatch) End() {
	if !b.open {
		return
	}
	b.open = false
	if b.slow {
		b.slow = false
		return
	}
	n := b.gets + b.cacheGets
	if n == 0 {
		return
	}
	c := b.c
	s := &c.n.stats
	var took time.Duration
	if b.timed {
		took = time.Since(b.start)
	}
	if b.gets > 0 {
		s.recordBatch(b.get, b.gets, took*time.Duration(b.gets)/time.Duration(n), took/time.Duration(n), b.timed)
	}
	if b.cacheGets > 0 {
		s.recordBatch(b.cacheGet, b.cacheGets, took*time.Duration(b.cacheGets)/time.Duration(n), took/time.Duration(n), b.timed)
	}
	if b.hits > 0 {
		s.hits.Add(c.id, b.hits)
	}
	if b.misses > 0 {
		s.misses.Add(c.id, b.misses)
	}
	if c.lastCmd.Load() != b.last {
		c.lastCmd.Store(b.last)
	}
	b.gets, b.cacheGets, b.hits, b.misses = 0, 0, 0, 0
}
