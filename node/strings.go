package node

import (
	"errors"
	"math"
	"math/big"
	"strconv"

	"github.com/sluicedb/sluice/limiter"
	"github.com/sluicedb/sluice/store"
)

// The string family: GET, SET and its variants, counters, ranges.

func init() {
	register(
		&Command{Name: "get", Arity: 2, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Returns the string value of a key.", Handler: cmdGet},
		&Command{Name: "set", Arity: -3, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", Handler: cmdSet},
		&Command{Name: "setnx", Arity: 3, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Set the string value of a key only when the key doesn't exist.", Handler: cmdSetNX},
		&Command{Name: "setex", Arity: 4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.0.0", Summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", Handler: cmdSetEX},
		&Command{Name: "psetex", Arity: 4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.6.0", Summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", Handler: cmdPSetEX},
		&Command{Name: "getset", Arity: 3, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Returns the previous string value of a key after setting it to a new value.", Handler: cmdGetSet},
		&Command{Name: "getdel", Arity: 2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "6.2.0", Summary: "Returns the string value of a key after deleting the key.", Handler: cmdGetDel},
		&Command{Name: "getex", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "6.2.0", Summary: "Returns the string value of a key after setting its expiration time.", Handler: cmdGetEX},
		&Command{Name: "mget", Arity: -2, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: -1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Atomically returns the string values of one or more keys.", Handler: cmdMGet},
		&Command{Name: "mset", Arity: -3, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: -1, Step: 2, Group: "string", Since: "1.0.1", Summary: "Atomically creates or modifies the string values of one or more keys.", Handler: cmdMSet},
		&Command{Name: "msetnx", Arity: -3, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: -1, Step: 2, Group: "string", Since: "1.0.1", Summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.", Handler: cmdMSetNX},
		&Command{Name: "incr", Arity: 2, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Handler: cmdIncr},
		&Command{Name: "decr", Arity: 2, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Handler: cmdDecr},
		&Command{Name: "incrby", Arity: 3, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Handler: cmdIncrBy},
		&Command{Name: "decrby", Arity: 3, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", Handler: cmdDecrBy},
		&Command{Name: "incrbyfloat", Arity: 3, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.6.0", Summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Handler: cmdIncrByFloat},
		&Command{Name: "append", Arity: 3, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.0.0", Summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.", Handler: cmdAppend},
		&Command{Name: "strlen", Arity: 2, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.2.0", Summary: "Returns the length of a string value.", Handler: cmdStrlen},
		&Command{Name: "getrange", Arity: 4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.4.0", Summary: "Returns a substring of the string stored at a key.", Handler: cmdGetRange},
		&Command{Name: "substr", Arity: 4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "1.0.0", Summary: "Returns a substring from a string value.", Handler: cmdGetRange},
		&Command{Name: "setrange", Arity: 4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", Since: "2.2.0", Summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", Handler: cmdSetRange},
	)
}

// maxStringLen is Redis's limit on a string built by a command (512 MiB).
const maxStringLen = 512 << 20

// open opens key for the running command, inside the locks it holds.
func (c *Client) open(h *store.Handle, key []byte) {
	c.n.store.Open(h, key, c.locks)
}

// stringValue reports whether h may be read as a string, replying WRONGTYPE if not.
func (c *Client) checkString(h *store.Handle) bool {
	if h.Exists() && h.Kind() != store.KindString {
		c.err(errWrongType)
		return false
	}
	return true
}

// isReplyError reports whether err already reads as a Redis error reply,
// prefix included (Error and limiter.Error).
func isReplyError(err error) bool {
	var e Error
	var le limiter.Error
	return errors.As(err, &e) || errors.As(err, &le)
}

// writeErr replies to a failed write.
func (c *Client) writeErr(err error) {
	if err = storeError(err); isReplyError(err) {
		c.err(err.Error())
		return
	}
	c.err("ERR " + err.Error())
}

func cmdGet(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	c.replyValue(&h)
}

// replyValue writes a string key's value, nil when absent, WRONGTYPE otherwise.
func (c *Client) replyValue(h *store.Handle) {
	if !h.Exists() {
		c.n.stats.misses.Add(c.id, 1)
		c.w.Null()
		return
	}
	if !c.checkString(h) {
		return
	}
	c.n.stats.hits.Add(c.id, 1)
	c.w.Bulk(h.Value())
}

// setFlags are SET's and GETEX's options.
type setFlags uint16

const (
	setNX setFlags = 1 << iota
	setXX
	setGet
	setKeepTTL
	setPersist
	setEX
	setPX
	setEXAT
	setPXAT

	setExpiry = setEX | setPX | setEXAT | setPXAT
)

// parseSetFlags parses the options of SET (getex false) or GETEX (getex
// true) from args[from:], with Redis's rules for which may be combined.
func parseSetFlags(args [][]byte, from int, getex bool) (flags setFlags, expire []byte, ok bool) {
	for j := from; j < len(args); j++ {
		opt := args[j]
		hasNext := j+1 < len(args)
		switch {
		case eqFold(opt, "nx") && flags&setXX == 0 && !getex:
			flags |= setNX
		case eqFold(opt, "xx") && flags&setNX == 0 && !getex:
			flags |= setXX
		case eqFold(opt, "get") && !getex:
			flags |= setGet
		case eqFold(opt, "keepttl") && flags&(setPersist|setExpiry) == 0 && !getex:
			flags |= setKeepTTL
		case eqFold(opt, "persist") && flags&(setKeepTTL|setExpiry) == 0 && getex:
			flags |= setPersist
		case eqFold(opt, "ex") && flags&(setKeepTTL|setPersist|setEXAT|setPX|setPXAT) == 0 && hasNext:
			flags |= setEX
			j++
			expire = args[j]
		case eqFold(opt, "px") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPXAT) == 0 && hasNext:
			flags |= setPX
			j++
			expire = args[j]
		case eqFold(opt, "exat") && flags&(setKeepTTL|setPersist|setEX|setPX|setPXAT) == 0 && hasNext:
			flags |= setEXAT
			j++
			expire = args[j]
		case eqFold(opt, "pxat") && flags&(setKeepTTL|setPersist|setEX|setEXAT|setPX) == 0 && hasNext:
			flags |= setPXAT
			j++
			expire = args[j]
		default:
			return 0, nil, false
		}
	}
	return flags, expire, true
}

// expireAt turns an expiry argument into Unix ms as Redis's
// getExpireMillisecondsOrReply does, replying with its errors.
func (c *Client) expireAt(arg []byte, flags setFlags, cmd string) (int64, bool) {
	v, ok := parseInt(arg)
	if !ok {
		c.err(errNotInt)
		return 0, false
	}
	seconds := flags&(setEX|setEXAT) != 0
	if v <= 0 || (seconds && v > math.MaxInt64/1000) {
		c.err(invalidExpire(cmd))
		return 0, false
	}
	if seconds {
		v *= 1000
	}
	if flags&(setEX|setPX) != 0 {
		v += c.n.store.Now()
	}
	if v <= 0 {
		c.err(invalidExpire(cmd))
		return 0, false
	}
	return v, true
}

func invalidExpire(cmd string) string {
	return "ERR invalid expire time in '" + cmd + "' command"
}

func cmdSet(c *Client, args [][]byte) {
	flags, expire, ok := parseSetFlags(args, 3, false)
	if !ok {
		c.err(errSyntax)
		return
	}
	var at int64
	if flags&setExpiry != 0 {
		if at, ok = c.expireAt(expire, flags, "set"); !ok {
			return
		}
	}
	c.set(args[1], args[2], flags, at)
}

// set is SET's core, shared by its shorthands.
func (c *Client) set(key, val []byte, flags setFlags, at int64) {
	var h store.Handle
	c.open(&h, key)
	defer h.Close()
	if flags&setGet != 0 {
		if !c.checkString(&h) {
			return
		}
	}
	exists := h.Exists()
	if (flags&setNX != 0 && exists) || (flags&setXX != 0 && !exists) {
		if flags&setGet != 0 {
			c.replyValue(&h)
		} else {
			c.w.Null()
		}
		return
	}
	// The old value must outlive the write that replaces it, and nothing may
	// be replied before the write is known to succeed.
	var old []byte
	if flags&setGet != 0 && exists {
		c.scratch = append(c.scratch[:0], h.Value()...)
		old = c.scratch
	}
	if flags&setKeepTTL != 0 && exists {
		at = h.ExpireAt()
	}
	if err := h.Set(val, store.KindString, at); err != nil {
		c.writeErr(err)
		return
	}
	if at != 0 && at <= c.n.store.Now() {
		h.Delete()
	}
	switch {
	case flags&setGet == 0:
		c.w.SimpleString("OK")
	case old != nil:
		c.w.Bulk(old)
		c.releaseScratch()
	default:
		c.w.Null()
	}
}

func cmdSetNX(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if h.Exists() {
		c.w.Int(0)
		return
	}
	if err := h.Set(args[2], store.KindString, 0); err != nil {
		c.writeErr(err)
		return
	}
	c.w.Int(1)
}

func cmdSetEX(c *Client, args [][]byte)  { c.setEx(args, setEX, "setex") }
func cmdPSetEX(c *Client, args [][]byte) { c.setEx(args, setPX, "psetex") }

func (c *Client) setEx(args [][]byte, unit setFlags, name string) {
	at, ok := c.expireAt(args[2], unit, name)
	if !ok {
		return
	}
	c.set(args[1], args[3], 0, at)
}

func cmdGetSet(c *Client, args [][]byte) {
	c.set(args[1], args[2], setGet, 0)
}

func cmdGetDel(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !h.Exists() {
		c.w.Null()
		return
	}
	if !c.checkString(&h) {
		return
	}
	c.w.Bulk(h.Value())
	h.Delete()
}

func cmdGetEX(c *Client, args [][]byte) {
	flags, expire, ok := parseSetFlags(args, 2, true)
	if !ok {
		c.err(errSyntax)
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !h.Exists() {
		c.w.Null()
		return
	}
	if !c.checkString(&h) {
		return
	}
	var at int64
	if flags&setExpiry != 0 {
		if at, ok = c.expireAt(expire, flags, "getex"); !ok {
			return
		}
	}
	c.w.Bulk(h.Value())
	switch {
	case flags&setExpiry != 0 && at <= c.n.store.Now():
		h.Delete()
	case flags&setExpiry != 0:
		h.SetExpireAt(at)
	case flags&setPersist != 0 && h.ExpireAt() != 0:
		h.SetExpireAt(0)
	}
}

func cmdMGet(c *Client, args [][]byte) {
	c.w.Array(len(args) - 1)
	for _, key := range args[1:] {
		var h store.Handle
		c.open(&h, key)
		if h.Exists() && h.Kind() == store.KindString {
			c.n.stats.hits.Add(c.id, 1)
			c.w.Bulk(h.Value())
		} else {
			c.n.stats.misses.Add(c.id, 1)
			c.w.Null()
		}
		h.Close()
	}
}

func cmdMSet(c *Client, args [][]byte) {
	if len(args)%2 == 0 {
		c.err(arityError(commands["mset"]))
		return
	}
	if c.msetAll(args) {
		c.w.SimpleString("OK")
	}
}

func cmdMSetNX(c *Client, args [][]byte) {
	if len(args)%2 == 0 {
		c.err(arityError(commands["msetnx"]))
		return
	}
	for i := 1; i < len(args); i += 2 {
		var h store.Handle
		c.open(&h, args[i])
		exists := h.Exists()
		h.Close()
		if exists {
			c.w.Int(0)
			return
		}
	}
	if c.msetAll(args) {
		c.w.Int(1)
	}
}

// msetAll sets every key/value pair of args[1:] (the shards are held by the
// dispatcher, so the whole command is atomic); it replies only on failure.
func (c *Client) msetAll(args [][]byte) bool {
	for i := 1; i < len(args); i += 2 {
		var h store.Handle
		c.open(&h, args[i])
		err := h.Set(args[i+1], store.KindString, 0)
		h.Close()
		if err != nil {
			c.writeErr(err)
			return false
		}
	}
	return true
}

func cmdIncr(c *Client, args [][]byte) { c.incrBy(args[1], 1) }
func cmdDecr(c *Client, args [][]byte) { c.incrBy(args[1], -1) }

func cmdIncrBy(c *Client, args [][]byte) {
	n, ok := parseInt(args[2])
	if !ok {
		c.err(errNotInt)
		return
	}
	c.incrBy(args[1], n)
}

func cmdDecrBy(c *Client, args [][]byte) {
	n, ok := parseInt(args[2])
	if !ok {
		c.err(errNotInt)
		return
	}
	if n == math.MinInt64 {
		c.err("ERR decrement would overflow")
		return
	}
	c.incrBy(args[1], -n)
}

func (c *Client) incrBy(key []byte, by int64) {
	var h store.Handle
	c.open(&h, key)
	defer h.Close()
	if !c.checkString(&h) {
		return
	}
	var cur int64
	if h.Exists() {
		v, ok := parseInt(h.Value())
		if !ok {
			c.err(errNotInt)
			return
		}
		cur = v
	}
	if (by < 0 && cur < 0 && by < math.MinInt64-cur) || (by > 0 && cur > 0 && by > math.MaxInt64-cur) {
		c.err(errOverflow)
		return
	}
	cur += by
	c.num = strconv.AppendInt(c.num[:0], cur, 10)
	if err := h.Set(c.num, store.KindString, h.ExpireAt()); err != nil {
		c.writeErr(err)
		return
	}
	c.w.Int(cur)
}

func cmdIncrByFloat(c *Client, args [][]byte) {
	by, ok := parseLongDouble(args[2])
	if !ok {
		c.err(errNotFloat)
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !c.checkString(&h) {
		return
	}
	cur := new(big.Float)
	if h.Exists() {
		if cur, ok = parseLongDouble(h.Value()); !ok {
			c.err(errNotFloat)
			return
		}
	}
	sum, ok := addLongDouble(cur, by)
	if !ok {
		c.err(errIncrFloatNaN)
		return
	}
	c.num = formatLongDouble(c.num[:0], sum)
	if err := h.Set(c.num, store.KindString, h.ExpireAt()); err != nil {
		c.writeErr(err)
		return
	}
	c.w.Bulk(c.num)
}

func cmdAppend(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !c.checkString(&h) {
		return
	}
	if h.Exists() && len(h.Value())+len(args[2]) > maxStringLen {
		c.err(errStringLen)
		return
	}
	n, err := h.Append(args[2])
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.Int(int64(n))
}

func cmdStrlen(c *Client, args [][]byte) {
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !c.checkString(&h) {
		return
	}
	c.w.Int(int64(len(h.Value())))
}

func cmdGetRange(c *Client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.err(errNotInt)
		return
	}
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !c.checkString(&h) {
		return
	}
	v := h.Value()
	if !h.Exists() {
		v = nil
	}
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		c.w.BulkString("")
		return
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start = max(start, 0)
	end = max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		c.w.BulkString("")
		return
	}
	c.w.Bulk(v[start : end+1])
}

func cmdSetRange(c *Client, args [][]byte) {
	offset, ok := parseInt(args[2])
	if !ok {
		c.err(errNotInt)
		return
	}
	if offset < 0 {
		c.err(errOffsetRange)
		return
	}
	val := args[3]
	var h store.Handle
	c.open(&h, args[1])
	defer h.Close()
	if !c.checkString(&h) {
		return
	}
	if !h.Exists() && len(val) == 0 {
		c.w.Int(0)
		return
	}
	if len(val) > 0 && offset+int64(len(val)) > maxStringLen {
		c.err(errStringLen)
		return
	}
	if len(val) == 0 {
		c.w.Int(int64(len(h.Value())))
		return
	}
	n, err := h.SetRange(int(offset), val)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.Int(int64(n))
}
