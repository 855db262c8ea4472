package node

import (
	"sync"
	"time"

	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/store"
)

// The fast path: typed entry points for the hottest reads of a protocol
// server that serves batches of them (wire/fb), and the routing decision
// such a server needs to answer redirects in its own format.
//
// Exec costs about 100 ns a command beyond the store's work: building the
// argument slices, the table lookup, the reply's interface calls, the
// deferred panic guard. For a batch of 64 GETs that was a third of the
// server's time. FastGet and FastCacheGet skip that machinery but keep
// every guarantee of the command table that applies to these reads:
// authentication, ACL permission on the command and its key, the cluster's
// routing (a key owned elsewhere is either redirected, for clients that
// follow redirects, or declined, so that Exec forwards it), keyspace hits
// and misses, the command's call count and sampled latency, and the
// client's last command and activity time (CLIENT LIST, idle timeout).
//
// They decline (FastSlow) whatever is out of the ordinary, and the caller
// then runs the command through Exec, which answers it exactly: a client
// that has not authenticated, one refused by its ACL, a key another node
// owns that must be forwarded, a value of another type (WRONGTYPE), a
// cluster with no table yet, a connection in MULTI or with CLIENT REPLY or
// tracking on, and every CACHE.GET that would grant a lease, because that
// is a write (leases replicate and invalidate like other writes). Declining
// has no side effect, so running the command afterwards is exact.
//
// FastBatch runs a request's many reads with the same guarantees, paying
// the checks and accounting that do not depend on the key once per batch
// (see fastbatch.go).

// FastStatus is what a fast-path call did.
type FastStatus uint8

const (
	// FastDone: the operation ran here; its outcome is in the result.
	FastDone FastStatus = iota
	// FastMoved: another node owns the key's slot and the client follows
	// redirects; Slot and Owner say where to send it. Nothing ran.
	FastMoved
	// FastSlow: declined; run the command through Exec. Nothing ran.
	FastSlow
)

// FastResult is the outcome of FastGet or FastCacheGet.
type FastResult struct {
	Status FastStatus
	// Found: GET found the key, or CACHE.GET has a value (fresh, stale).
	Found bool
	// State is CACHE.GET's state: fresh, stale or wait (the others grant a
	// lease and are declined).
	State CacheState
	// Slot and Owner, for FastMoved: the key's slot and the member ID of
	// its owner (Cluster().Member(Owner).Meta has its addresses).
	Slot  uint16
	Owner string
}

// Route is where a keyed command runs, for RouteKey.
type Route struct {
	// Moved: another node owns the slot and the client follows redirects;
	// answer with a redirect to Owner for Slot rather than running it.
	// Otherwise run the command with Exec, which serves it here or
	// forwards it to its owner.
	Moved bool
	Slot  uint16
	Owner string
}

// fastCommands are the commands the fast path runs, looked up once the
// command table is built.
var fastCommands = sync.OnceValues(func() (get, cacheGet *Command) {
	return commands["get"], commands["cache.get"]
})

// RouteKey tells a protocol server that answers redirects in its own
// format whether the command cmd (its lower-case name, such as "rl.take")
// on key is to be redirected: only for a client that follows redirects,
// has authenticated and is permitted the command on key, so that refusals
// come first as they do in Exec. Otherwise Moved is false and the server
// runs the command with Exec.
func (c *Client) RouteKey(cmd string, key []byte) Route {
	cl := c.n.cluster
	if cl == nil || !c.authed || !c.followsRedirects() {
		return Route{}
	}
	t := cl.Table()
	if t == nil {
		return Route{}
	}
	slot := ring.KeySlot(key)
	owner := t.Owner(slot)
	if owner == c.n.id {
		return Route{}
	}
	command := commands[cmd]
	if command == nil || !c.permits(command, key) {
		return Route{}
	}
	return Route{Moved: true, Slot: slot, Owner: owner}
}

// FastGet runs GET key. When it is done here it appends the value, if the
// key exists, to dst and returns the extended slice; the append is the
// only copy, made under the shard's lock. With a reused dst it allocates
// nothing.
func (c *Client) FastGet(dst, key []byte) ([]byte, FastResult) {
	get, _ := fastCommands()
	if r, ok := c.fastEnter(get, key); !ok {
		return dst, r
	}
	start := c.fastStart()
	dst, found, slow := c.fastGetValue(dst, key, c.n.store.Now())
	switch {
	case slow:
		return dst, FastResult{Status: FastSlow} // Exec answers WRONGTYPE
	case found:
		c.n.stats.hits.Add(c.id, 1)
	default:
		c.n.stats.misses.Add(c.id, 1)
	}
	c.fastDone(get, start)
	return dst, FastResult{Found: found}
}

// fastGetValue is GET's work in the store at the time now (Store.Now): it
// appends key's value, if it exists, to dst. slow: the key holds another
// type, and nothing was done.
func (c *Client) fastGetValue(dst, key []byte, now int64) (_ []byte, found, slow bool) {
	var h store.Handle
	c.n.store.OpenAt(&h, key, nil, now)
	switch {
	case !h.Exists():
		h.Close()
		return dst, false, false
	case h.Kind() != store.KindString:
		h.Close()
		return dst, false, true
	}
	dst = append(dst, h.Value()...)
	h.Close()
	return dst, true, false
}

// FastCacheGet runs CACHE.GET key when it grants no lease: the entry is
// fresh, or stale while another caller holds the lease (its value is
// appended to dst), or missing while another caller loads it (wait). A
// call that would grant a lease (miss, revalidate) is declined: run it with
// Exec. leaseMs is not used by the states served here, but one that Exec
// would refuse (negative) is declined too.
func (c *Client) FastCacheGet(dst, key []byte, leaseMs int64) ([]byte, FastResult) {
	_, cacheGet := fastCommands()
	if leaseMs < 0 {
		return dst, FastResult{Status: FastSlow}
	}
	if r, ok := c.fastEnter(cacheGet, key); !ok {
		return dst, r
	}
	start := c.fastStart()
	dst, state, slow := c.fastCacheValue(dst, key, c.n.store.Now())
	if slow {
		return dst, FastResult{Status: FastSlow}
	}
	found := state != CacheWait
	if found {
		c.n.stats.hits.Add(c.id, 1)
	} else {
		c.n.stats.misses.Add(c.id, 1)
	}
	c.fastDone(cacheGet, start)
	return dst, FastResult{Found: found, State: state}
}

// fastCacheValue is CACHE.GET's work in the store when it grants no lease:
// it returns the state and appends the value, for fresh and stale, to dst.
// slow: a lease to grant or another type, and nothing was done. now is the
// time of the store (Store.Now) to decide at.
func (c *Client) fastCacheValue(dst, key []byte, now int64) (_ []byte, state CacheState, slow bool) {
	var h store.Handle
	c.n.store.OpenAt(&h, key, nil, now)
	meta, hasMeta := h.Cache()
	leased := hasMeta && meta.LeaseToken != 0 && now < meta.LeaseUntil
	switch {
	case !h.Exists() && leased:
		h.Close()
		return dst, CacheWait, false
	case !h.Exists() || h.Kind() != store.KindString:
		h.Close()
		return dst, "", true // a lease to grant, or WRONGTYPE
	case !hasMeta || now < meta.FreshUntil:
		state = CacheFresh
	case leased:
		state = CacheStale
	default:
		h.Close()
		return dst, "", true // revalidate: a lease to grant
	}
	dst = append(dst, h.Value()...)
	h.Close()
	return dst, state, false
}

// fastEnter applies what Exec checks before it runs a command on key, and
// reports whether the fast path may run it here.
func (c *Client) fastEnter(cmd *Command, key []byte) (FastResult, bool) {
	if !c.authed || c.multi != nil || c.replyOff || c.skipNext || c.track.on || c.locks != nil {
		return FastResult{Status: FastSlow}, false
	}
	if !c.permits(cmd, key) {
		return FastResult{Status: FastSlow}, false // Exec answers NOPERM
	}
	if cmd.Flags&flagDenyOOM != 0 && c.n.overMemory() {
		return FastResult{Status: FastSlow}, false
	}
	return c.fastRoute(key, c.followsRedirects())
}

// fastRoute reports whether key's slot is this node's, so that the fast
// path may run it here; otherwise the result says what to do: redirect a
// client that follows redirects, or decline so that Exec forwards it.
func (c *Client) fastRoute(key []byte, follows bool) (FastResult, bool) {
	cl := c.n.cluster
	if cl == nil {
		return FastResult{}, true
	}
	t := cl.Table()
	if t == nil {
		return FastResult{Status: FastSlow}, false // Exec answers CLUSTERDOWN
	}
	slot := ring.KeySlot(key)
	if owner := t.Owner(slot); owner != c.n.id {
		if follows {
			return FastResult{Status: FastMoved, Slot: slot, Owner: owner}, false
		}
		return FastResult{Status: FastSlow}, false // Exec forwards it
	}
	return FastResult{}, true
}

// permits reports whether the client's user may run cmd on key (a command
// with one key).
func (c *Client) permits(cmd *Command, key []byte) bool {
	u := c.user.Load().user()
	if u.allCommands && u.allKeys {
		return true
	}
	args := [2][]byte{nil, key}
	if cmd.FirstKey != 1 {
		return false // not a one-key command: let Exec decide
	}
	return u.permitted(cmd, args[:]) == ""
}

// fastStart marks the client active and, for one command in timingSample,
// starts the clock, as call does.
func (c *Client) fastStart() time.Time {
	c.lastActive.Store(c.n.coarseMs.Load())
	c.ncmd++
	if c.ncmd%timingSample == 0 {
		return time.Now()
	}
	return time.Time{}
}

// fastDone accounts for a command the fast path ran, as call does.
func (c *Client) fastDone(cmd *Command, start time.Time) {
	timed := !start.IsZero()
	var took time.Duration
	if timed {
		took = time.Since(start)
	}
	c.n.stats.record(cmd, took, timed, false)
	if c.lastCmd.Load() != cmd {
		c.lastCmd.Store(cmd)
	}
}

// ExecForward runs a command as Exec does, except that a key another node
// owns is forwarded to it even when the client follows redirects (unless
// Config.Redirect is "always"): for a protocol server whose redirect would
// have to name an address the owner does not advertise.
func (c *Client) ExecForward(w Writer, args [][]byte) (closeConn bool) {
	follows := c.redirects
	c.redirects = false
	defer func() { c.redirects = follows }()
	return c.Exec(w, args)
}
