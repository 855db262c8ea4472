package node

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// Server-assisted client-side caching (CLIENT TRACKING), as Redis 7 does it:
// in the default mode the node remembers which clients read which keys and
// pushes an "invalidate" message to them when such a key changes, expires or
// is evicted; in BCAST mode clients get every change under their prefixes.
// Messages go out as RESP3 pushes on the client's own connection, or on the
// connection it redirects to. A RESP2 connection without redirection gets
// nothing, as in Redis, because RESP2 has no push type.
//
// Keys are remembered before the read runs, so a write that races with the
// read always produces an invalidation after it. Once a key is invalidated it
// is forgotten until read again. The table holds at most maxTrackedKeys keys;
// past that, the oldest-looking entries are invalidated early, as Redis does
// with tracking-table-max-keys.

const maxTrackedKeys = 1 << 20

type trackState struct {
	on       bool
	bcast    bool
	optin    bool
	optout   bool
	noloop   bool
	redir    int64
	prefixes [][]byte
	caching  int8 // CLIENT CACHING yes (optin) / no (optout) for the next command
}

// redirectOf is c's redirect as another client may read it (CLIENT LIST):
// tracking state changes under t.mu, also when c disconnects.
func (t *tracking) redirectOf(c *Client) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return c.track.redirect()
}

// redirect is what CLIENT GETREDIR answers: -1 without tracking.
func (t *trackState) redirect() int64 {
	if !t.on {
		return -1
	}
	return t.redir
}

type tracking struct {
	enabled atomic.Int32 // clients with tracking on: writes skip all of this when 0
	mu      sync.Mutex
	keys    map[string]map[int64]struct{}
	on      map[int64]*Client // every client with tracking on
	bcast   map[int64]*Client // those in BCAST mode
	clients func(id int64) *Client
}

func (t *tracking) init(lookup func(id int64) *Client) {
	t.keys = make(map[string]map[int64]struct{})
	t.on = make(map[int64]*Client)
	t.bcast = make(map[int64]*Client)
	t.clients = lookup
}

func (t *tracking) active() bool { return t.enabled.Load() > 0 }

func (t *tracking) enable(c *Client, s trackState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !c.track.on {
		t.enabled.Add(1)
	}
	c.track = s
	t.on[c.id] = c
	if s.bcast {
		t.bcast[c.id] = c
	}
}

func (t *tracking) disable(c *Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.track.on {
		t.enabled.Add(-1)
		delete(t.on, c.id)
		delete(t.bcast, c.id)
	}
	c.track = trackState{}
}

// forget drops a disconnected client. Its ids left in the key table are
// skipped when invalidating and vanish with the keys.
func (t *tracking) forget(c *Client) { t.disable(c) }

// trackRead remembers the keys a read-only command is about to read.
func (c *Client) trackRead(cmd *Command, args [][]byte) {
	s := &c.track
	if s.bcast || (s.optin && s.caching == 0) || (s.optout && s.caching != 0) {
		return
	}
	t := &c.n.tracking
	t.mu.Lock()
	defer t.mu.Unlock()
	n := cmd.keyCount(len(args))
	for i := 0; i < n; i++ {
		key := args[cmd.FirstKey+i*cmd.Step]
		ids := t.keys[string(key)]
		if ids == nil {
			if len(t.keys) >= maxTrackedKeys {
				t.evictOneLocked()
			}
			ids = make(map[int64]struct{}, 1)
			t.keys[string(key)] = ids
		}
		ids[c.id] = struct{}{}
	}
}

// evictOneLocked invalidates one tracked key (map order is random) to keep the
// table bounded.
func (t *tracking) evictOneLocked() {
	for key, ids := range t.keys {
		delete(t.keys, key)
		t.sendLocked(nil, []byte(key), ids)
		return
	}
}

// invalidateKeys is called after a write command with the keys it names.
func (t *tracking) invalidateKeys(by *Client, cmd *Command, args [][]byte) {
	n := cmd.keyCount(len(args))
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < n; i++ {
		t.invalidateLocked(by, args[cmd.FirstKey+i*cmd.Step])
	}
}

// invalidateRemoved is the store's OnRemove hook: a key expired or was evicted.
func (t *tracking) invalidateRemoved(key []byte) {
	if !t.active() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.invalidateLocked(nil, key)
}

func (t *tracking) invalidateLocked(by *Client, key []byte) {
	if ids, ok := t.keys[string(key)]; ok {
		delete(t.keys, string(key))
		t.sendLocked(by, key, ids)
	}
	for _, c := range t.bcast {
		if c.track.noloop && c == by {
			continue
		}
		for _, p := range c.track.prefixes {
			if bytes.HasPrefix(key, p) {
				t.push(c, key)
				break
			}
		}
	}
}

func (t *tracking) sendLocked(by *Client, key []byte, ids map[int64]struct{}) {
	for id := range ids {
		c := t.clients(id)
		if c == nil || !c.track.on || (c == by && c.track.noloop) {
			continue
		}
		t.push(c, key)
	}
}

// push sends an invalidation of key (nil = everything) to c or its redirect target.
func (t *tracking) push(c *Client, key []byte) {
	target := c
	if c.track.redir != 0 {
		if target = t.clients(c.track.redir); target == nil {
			return
		}
	}
	if target.conn == nil || !target.resp3.Load() {
		return
	}
	var k []byte
	if key != nil {
		k = append([]byte(nil), key...)
	}
	target.conn.Send(func(w Writer) {
		w.Push(2)
		w.BulkString("invalidate")
		if k == nil {
			w.NullArray()
			return
		}
		w.Array(1)
		w.Bulk(k)
	})
}

// invalidateAll tells every tracking client that everything changed (FLUSHALL).
func (t *tracking) invalidateAll(by *Client) {
	if !t.active() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.keys)
	for _, c := range t.on {
		if !(c == by && c.track.noloop) {
			t.push(c, nil)
		}
	}
}

func cmdClientTracking(c *Client, args [][]byte) {
	var s trackState
	for j := 3; j < len(args); j++ {
		more := len(args) - 1 - j
		switch opt := args[j]; {
		case eqFold(opt, "redirect") && more > 0:
			j++
			if s.redir != 0 {
				c.err("ERR A client can only redirect to a single other client")
				return
			}
			id, ok := parseInt(args[j])
			if !ok {
				c.err(errNotInt)
				return
			}
			if c.n.client(id) == nil {
				c.err("ERR The client ID you want redirect to does not exist")
				return
			}
			s.redir = id
		case eqFold(opt, "bcast"):
			s.bcast = true
		case eqFold(opt, "optin"):
			s.optin = true
		case eqFold(opt, "optout"):
			s.optout = true
		case eqFold(opt, "noloop"):
			s.noloop = true
		case eqFold(opt, "prefix") && more > 0:
			j++
			s.prefixes = append(s.prefixes, append([]byte(nil), args[j]...))
		default:
			c.err(errSyntax)
			return
		}
	}
	switch {
	case eqFold(args[2], "on"):
		switch {
		case !s.bcast && len(s.prefixes) > 0:
			c.err("ERR PREFIX option requires BCAST mode to be enabled")
		case c.track.on && c.track.bcast != s.bcast:
			c.err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
		case s.bcast && (s.optin || s.optout):
			c.err("ERR OPTIN and OPTOUT are not compatible with BCAST")
		case s.optin && s.optout:
			c.err("ERR You can't specify both OPTIN mode and OPTOUT mode")
		case (s.optin && c.track.optout) || (s.optout && c.track.optin):
			c.err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
		default:
			if msg := prefixOverlap(s.prefixes); msg != "" {
				c.err(msg)
				return
			}
			if s.bcast && len(s.prefixes) == 0 {
				s.prefixes = [][]byte{{}}
			}
			s.on = true
			c.n.tracking.enable(c, s)
			c.w.SimpleString("OK")
		}
	case eqFold(args[2], "off"):
		c.n.tracking.disable(c)
		c.w.SimpleString("OK")
	default:
		c.err(errSyntax)
	}
}

func prefixOverlap(prefixes [][]byte) string {
	for i, a := range prefixes {
		for _, b := range prefixes[i+1:] {
			if bytes.HasPrefix(a, b) || bytes.HasPrefix(b, a) {
				return "ERR Prefix '" + string(a) + "' overlaps with another provided prefix '" + string(b) + "'. Prefixes for a single client must not overlap."
			}
		}
	}
	return ""
}

func cmdClientCaching(c *Client, args [][]byte) {
	if !c.track.on {
		c.err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
		return
	}
	switch {
	case eqFold(args[2], "yes") && c.track.optin:
		c.track.caching = 1
	case eqFold(args[2], "yes"):
		c.err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
		return
	case eqFold(args[2], "no") && c.track.optout:
		c.track.caching = -1
	case eqFold(args[2], "no"):
		c.err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
		return
	default:
		c.err(errSyntax)
		return
	}
	c.w.SimpleString("OK")
}

func cmdClientTrackingInfo(c *Client, args [][]byte) {
	s := &c.track
	flags := []string{"off"}
	if s.on {
		flags[0] = "on"
	}
	if s.bcast {
		flags = append(flags, "bcast")
	}
	if s.optin {
		flags = append(flags, "optin")
		if s.caching != 0 {
			flags = append(flags, "caching-yes")
		}
	}
	if s.optout {
		flags = append(flags, "optout")
		if s.caching != 0 {
			flags = append(flags, "caching-no")
		}
	}
	if s.noloop {
		flags = append(flags, "noloop")
	}
	c.w.Map(3)
	c.w.BulkString("flags")
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.BulkString(f)
	}
	c.w.BulkString("redirect")
	c.w.Int(s.redirect())
	c.w.BulkString("prefixes")
	prefixes := s.prefixes
	if len(prefixes) == 1 && len(prefixes[0]) == 0 {
		prefixes = nil
	}
	c.w.Array(len(prefixes))
	for _, p := range prefixes {
		c.w.Bulk(p)
	}
}
