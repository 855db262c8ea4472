package node

import (
	"math"
	"strconv"

	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/store"
)

// The keyspace family: existence, deletion, expiry, iteration, renaming.

func init() {
	k1 := func(name string, arity int, flags Flag, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", Since: since, Summary: summary, Handler: h}
	}
	kn := func(name string, flags Flag, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: -2, Flags: flags, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", Since: since, Summary: summary, Handler: h}
	}
	register(
		kn("del", flagWrite, "1.0.0", "Deletes one or more keys.", cmdDel),
		kn("unlink", flagWrite|flagFast, "4.0.0", "Asynchronously deletes one or more keys.", cmdDel),
		kn("exists", flagReadonly|flagFast, "1.0.0", "Determines whether one or more keys exist.", cmdExists),
		kn("touch", flagReadonly|flagFast, "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", cmdExists),
		k1("type", 2, flagReadonly|flagFast, "1.0.0", "Determines the type of value stored at a key.", cmdType),
		k1("expire", -3, flagWrite|flagFast, "1.0.0", "Sets the expiration time of a key in seconds.", cmdExpire),
		k1("pexpire", -3, flagWrite|flagFast, "2.6.0", "Sets the expiration time of a key in milliseconds.", cmdPExpire),
		k1("expireat", -3, flagWrite|flagFast, "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", cmdExpireAt),
		k1("pexpireat", -3, flagWrite|flagFast, "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", cmdPExpireAt),
		k1("ttl", 2, flagReadonly|flagFast, "1.0.0", "Returns the expiration time in seconds of a key.", cmdTTL),
		k1("pttl", 2, flagReadonly|flagFast, "2.6.0", "Returns the expiration time in milliseconds of a key.", cmdPTTL),
		k1("expiretime", 2, flagReadonly|flagFast, "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", cmdExpireTime),
		k1("pexpiretime", 2, flagReadonly|flagFast, "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", cmdPExpireTime),
		k1("persist", 2, flagWrite|flagFast, "2.2.0", "Removes the expiration time of a key.", cmdPersist),
		&Command{Name: "rename", Arity: 3, Flags: flagWrite, FirstKey: 1, LastKey: 2, Step: 1, Group: "generic", Since: "1.0.0", Summary: "Renames a key and overwrites the destination.", Handler: cmdRename},
		&Command{Name: "renamenx", Arity: 3, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 2, Step: 1, Group: "generic", Since: "1.0.0", Summary: "Renames a key only when the target key name doesn't exist.", Handler: cmdRenameNX},
		&Command{Name: "keys", Arity: 2, Flags: flagReadonly | flagAllKeys | flagDangerous, Group: "generic", Since: "1.0.0", Summary: "Returns all key names that match a pattern.", Handler: cmdKeys},
		&Command{Name: "scan", Arity: -2, Flags: flagReadonly | flagAllKeys, Group: "generic", Since: "2.8.0", Summary: "Iterates over the key names in the database.", Handler: cmdScan},
		&Command{Name: "randomkey", Arity: 1, Flags: flagReadonly | flagAllKeys, Group: "generic", Since: "1.0.0", Summary: "Returns a random key name from the database.", Handler: cmdRandomKey},
		&Command{Name: "dbsize", Arity: 1, Flags: flagReadonly | flagFast | flagAllKeys, Group: "server", Since: "1.0.0", Summary: "Returns the number of keys in the database.", Handler: cmdDBSize},
		&Command{Name: "flushdb", Arity: -1, Flags: flagWrite | flagAllKeys | flagDangerous, Group: "server", Since: "1.0.0", Summary: "Removes all keys from the current database.", Handler: cmdFlush},
		&Command{Name: "flushall", Arity: -1, Flags: flagWrite | flagAllKeys | flagDangerous, Group: "server", Since: "1.0.0", Summary: "Removes all keys from all databases.", Handler: cmdFlush},
	)
}

func cmdDel(c *Client, args [][]byte) {
	var n int64
	for _, key := range args[1:] {
		var h store.Handle
		c.open(&h, key)
		if h.Exists() {
			h.Delete()
			n++
		} else if _, leased := h.Cache(); leased {
			h.Delete() // a miss's lease placeholder: not a key, but DEL revokes it
		}
		h.Close()
	}
	c.w.Int(n)
}

func cmdExists(c *Client, args [][]byte) {
	var n int64
	for _, key := range args[1:] {
		var h store.Handle
		c.open(&h, key)
		if h.Exists() {
			n++
		}
		h.Close()
	}
	c.w.Int(n)
}

// typeName is what TYPE answers for a kind.
func typeName(k store.Kind) string {
	switch k {
	case store.KindString:
		return "string"
	case store.KindLimiter:
		return "ratelimit"
	}
	return "none"
}

func cmdType(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !h.Exists() {
		c.w.SimpleString("none")
		return
	}
	c.w.SimpleString(typeName(h.Kind()))
}

// expireFlags are EXPIRE's NX, XX, GT and LT.
type expireFlags uint8

const (
	expNX expireFlags = 1 << iota
	expXX
	expGT
	expLT
)

func cmdExpire(c *Client, args [][]byte)    { c.expire(args, 1000, false) }
func cmdPExpire(c *Client, args [][]byte)   { c.expire(args, 1, false) }
func cmdExpireAt(c *Client, args [][]byte)  { c.expire(args, 1000, true) }
func cmdPExpireAt(c *Client, args [][]byte) { c.expire(args, 1, true) }

// expire is the EXPIRE family, following Redis's expireGenericCommand: the
// time may be negative (the key is then deleted), only overflow is an error.
func (c *Client) expire(args [][]byte, unit int64, absolute bool) {
	var flags expireFlags
	for _, opt := range args[3:] {
		switch {
		case eqFold(opt, "nx"):
			flags |= expNX
		case eqFold(opt, "xx"):
			flags |= expXX
		case eqFold(opt, "gt"):
			flags |= expGT
		case eqFold(opt, "lt"):
			flags |= expLT
		default:
			c.err("ERR Unsupported option " + string(opt))
			return
		}
	}
	if flags&expNX != 0 && flags&(expXX|expGT|expLT) != 0 {
		c.err("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if flags&expGT != 0 && flags&expLT != 0 {
		c.err("ERR GT and LT options at the same time are not compatible")
		return
	}
	when, ok := parseInt(args[2])
	if !ok {
		c.err(errNotInt)
		return
	}
	name := c.cmdName(args)
	if unit == 1000 {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			c.err(invalidExpire(name))
			return
		}
		when *= 1000
	}
	var base int64
	now := c.n.store.Now()
	if !absolute {
		base = now
	}
	if when > math.MaxInt64-base {
		c.err(invalidExpire(name))
		return
	}
	when += base
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !h.Exists() {
		c.w.Int(0)
		return
	}
	cur := h.ExpireAt() // 0 = none, which GT and LT treat as infinite
	switch {
	case flags&expNX != 0 && cur != 0,
		flags&expXX != 0 && cur == 0,
		flags&expGT != 0 && (cur == 0 || when <= cur),
		flags&expLT != 0 && cur != 0 && when >= cur:
		c.w.Int(0)
		return
	}
	if when <= now {
		h.Delete()
	} else {
		h.SetExpireAt(when)
	}
	c.w.Int(1)
}

// cmdName is the lower-case name of the running command.
func (c *Client) cmdName(args [][]byte) string {
	return string(appendLower(nil, args[0]))
}

func cmdTTL(c *Client, args [][]byte)         { c.ttl(args[1], false, false) }
func cmdPTTL(c *Client, args [][]byte)        { c.ttl(args[1], true, false) }
func cmdExpireTime(c *Client, args [][]byte)  { c.ttl(args[1], false, true) }
func cmdPExpireTime(c *Client, args [][]byte) { c.ttl(args[1], true, true) }

func (c *Client) ttl(key []byte, ms, absolute bool) {
	var h store.Handle
	c.open(&h, key)
	defer h.Close()
	at := h.ExpireAt()
	switch {
	case !h.Exists():
		c.w.Int(-2)
	case at == 0:
		c.w.Int(-1)
	case absolute && ms:
		c.w.Int(at)
	case absolute:
		c.w.Int(at / 1000)
	default:
		left := max(at-c.n.store.Now(), 0)
		if ms {
			c.w.Int(left)
		} else {
			c.w.Int((left + 500) / 1000)
		}
	}
}

func cmdPersist(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !h.Exists() || h.ExpireAt() == 0 {
		c.w.Int(0)
		return
	}
	h.SetExpireAt(0)
	c.w.Int(1)
}

func cmdRename(c *Client, args [][]byte)   { c.rename(args, false) }
func cmdRenameNX(c *Client, args [][]byte) { c.rename(args, true) }

// rename moves a key with its value, kind, TTL and cache metadata. The
// dispatcher holds both keys' shards, so the move is atomic.
func (c *Client) rename(args [][]byte, nx bool) {
	var h store.Handle
	c.open(&h, args[1])
	if !h.Exists() {
		h.Close()
		c.err(errNoSuchKey)
		return
	}
	if string(args[1]) == string(args[2]) {
		h.Close()
		if nx {
			c.w.Int(0)
		} else {
			c.w.SimpleString("OK")
		}
		return
	}
	c.scratch = append(c.scratch[:0], h.Value()...)
	kind, at := h.Kind(), h.ExpireAt()
	meta, hasMeta := h.Cache()
	h.Close()

	c.open(&h, args[2])
	if nx && h.Exists() {
		h.Close()
		c.w.Int(0)
		return
	}
	var err error
	if hasMeta && kind == store.KindString {
		err = h.SetCache(c.scratch, at, store.Cache{FreshUntil: meta.FreshUntil})
	} else {
		err = h.Set(c.scratch, kind, at)
	}
	h.Close()
	c.releaseScratch()
	if err != nil {
		c.writeErr(err)
		return
	}
	c.open(&h, args[1])
	h.Delete()
	h.Close()
	if nx {
		c.w.Int(1)
	} else {
		c.w.SimpleString("OK")
	}
}

func cmdKeys(c *Client, args [][]byte) {
	pattern := args[1]
	all := len(pattern) == 1 && pattern[0] == '*'
	var keys [][]byte
	var cursor uint64
	mine := c.n.mine()
	for {
		cursor = c.n.store.Scan(cursor, 1024, c.locks, func(key []byte, _ store.Kind, _ int64) {
			if (all || globMatch(pattern, key, false)) && (mine == nil || mine(key)) {
				keys = append(keys, append([]byte(nil), key...))
			}
		})
		if cursor == 0 {
			break
		}
	}
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.Bulk(k)
	}
}

func cmdScan(c *Client, args [][]byte) {
	cursor, ok := parseCursor(args[1])
	if !ok {
		c.err(errCursor)
		return
	}
	count := int64(10)
	var pattern, typ []byte
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.err(errSyntax)
			return
		}
		switch opt := args[i]; {
		case eqFold(opt, "count"):
			n, ok := parseInt(args[i+1])
			if !ok {
				c.err(errNotInt)
				return
			}
			if n < 1 {
				c.err(errSyntax)
				return
			}
			count = n
		case eqFold(opt, "match"):
			pattern = args[i+1]
			if len(pattern) == 1 && pattern[0] == '*' {
				pattern = nil
			}
		case eqFold(opt, "type"):
			typ = args[i+1]
		default:
			c.err(errSyntax)
			return
		}
	}
	var keys [][]byte
	mine := c.n.mine()
	next := c.n.store.Scan(cursor, int(min(count, 1<<20)), c.locks, func(key []byte, kind store.Kind, _ int64) {
		if pattern != nil && !globMatch(pattern, key, false) {
			return
		}
		if mine != nil && !mine(key) {
			return
		}
		if typ != nil && !eqFold(typ, typeName(kind)) {
			return
		}
		keys = append(keys, append([]byte(nil), key...))
	})
	c.w.Array(2)
	c.num = strconv.AppendUint(c.num[:0], next, 10)
	c.w.Bulk(c.num)
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.Bulk(k)
	}
}

// parseCursor reads a SCAN cursor as Redis does with strtoul: an optional
// sign (a negative cursor wraps around), decimal digits, and "" as 0; no
// leading space, no trailing garbage, no overflow.
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := false
	digits := b
	if b[0] == '+' || b[0] == '-' {
		neg, digits = b[0] == '-', b[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

func cmdRandomKey(c *Client, args [][]byte) {
	mine := c.n.mine()
	key, ok := c.n.store.RandomKey(c.scratch[:0], c.locks)
	// A node that also holds copies of other nodes' slots draws until it
	// finds one of its own keys (a fair number of tries, as Redis's
	// RANDOMKEY gives up on a keyspace of expired keys).
	for tries := 0; ok && mine != nil && !mine(key) && tries < 100; tries++ {
		key, ok = c.n.store.RandomKey(key[:0], c.locks)
	}
	if !ok || (mine != nil && !mine(key)) {
		c.w.Null()
		return
	}
	c.scratch = key
	c.w.Bulk(key)
}

func cmdDBSize(c *Client, args [][]byte) {
	c.w.Int(int64(c.n.dbSize()))
}

// dbSize is the number of keys of the slots this node owns: its store also
// holds copies of other nodes' slots (replicas, slots being handed over),
// which DBSIZE, KEYS, SCAN and RANDOMKEY leave out, as on a Redis Cluster
// primary, whose replicas are other processes.
func (n *Node) dbSize() int {
	t := n.table()
	if t == nil {
		return n.store.Len()
	}
	total := 0
	for s := range ring.Slots {
		if t.Owner(uint16(s)) == n.id {
			total += n.store.SlotLen(uint16(s))
		}
	}
	return total
}

// table is the slot table when this node's store may hold keys of slots it
// does not own, else nil (no cluster, or a cluster of one).
func (n *Node) table() *ring.Table {
	if n.cluster == nil {
		return nil
	}
	if t := n.cluster.Table(); t != nil && t.Size() > 1 {
		return t
	}
	return nil
}

// mine returns a filter for keys of the slots this node owns, or nil when
// every key in its store is its own.
func (n *Node) mine() func(key []byte) bool {
	t := n.table()
	if t == nil {
		return nil
	}
	return func(key []byte) bool { return t.Owner(ring.KeySlot(key)) == n.id }
}

func cmdFlush(c *Client, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !eqFold(args[1], "sync") && !eqFold(args[1], "async")) {
		c.err(errSyntax)
		return
	}
	if t := c.n.table(); t != nil {
		// Only this node's slots: the copies it holds of other nodes' slots
		// are theirs to flush. Its replicas get resets (see replicate).
		c.n.store.DeleteSlots(func(s uint16) bool { return t.Owner(s) == c.n.id }, c.locks)
	} else {
		c.n.store.Flush(c.locks)
	}
	c.n.tracking.invalidateAll(c)
	c.w.SimpleString("OK")
}
