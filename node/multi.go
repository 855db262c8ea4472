package node

import (
	"sort"

	"github.com/sluicedb/sluice/store"
)

// Transactions: MULTI queues commands, EXEC runs them as one atomic step
// holding the shard locks of every key they name (every shard when one of
// them spans the keyspace), and WATCH aborts EXEC if a watched key changed.
// A watched key has changed when its version differs from the one WATCH saw,
// which covers writes, deletes, expiry and eviction alike.

func init() {
	tx := func(name string, arity int, flags Flag, first, last int, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags | flagAnyState, FirstKey: first, LastKey: last, Step: 1, Group: "transactions", Since: since, Summary: summary, Handler: h}
	}
	register(
		tx("multi", 1, flagNoMulti|flagFast|flagAllowBusy, 0, 0, "1.2.0", "Starts a transaction.", cmdMulti),
		tx("exec", 1, flagNoMulti|flagSkipSlowlog, 0, 0, "1.2.0", "Executes all commands in a transaction.", cmdExec),
		tx("discard", 1, flagNoMulti|flagFast|flagAllowBusy, 0, 0, "2.0.0", "Discards a transaction.", cmdDiscard),
		tx("watch", -2, flagNoMulti|flagFast|flagAllowBusy, 1, -1, "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", cmdWatch),
		tx("unwatch", 1, flagFast|flagAllowBusy, 0, 0, "2.2.0", "Forgets about watched keys of a transaction.", cmdUnwatch),
	)
}

type multiState struct {
	queue []queued
	dirty bool // a command failed to queue: EXEC aborts
}

type queued struct {
	cmd  *Command
	args [][]byte
}

type watch struct {
	key     []byte
	exists  bool
	version uint64
}

// setMulti opens (m non-nil) or ends the client's transaction, keeping the
// queue length CLIENT LIST shows other clients in step.
func (c *Client) setMulti(m *multiState) {
	c.multi = m
	if m == nil {
		c.multiLen.Store(-1)
	} else {
		c.multiLen.Store(int64(len(m.queue)))
	}
}

// flagMulti marks the open transaction as failed (a command was refused).
func (c *Client) flagMulti() {
	if c.multi != nil {
		c.multi.dirty = true
	}
}

func cmdMulti(c *Client, args [][]byte) {
	if c.multi != nil {
		c.err(errNestedMulti)
		return
	}
	c.setMulti(&multiState{})
	c.w.SimpleString("OK")
}

func cmdDiscard(c *Client, args [][]byte) {
	if c.multi == nil {
		c.err(errDiscardNoMult)
		return
	}
	c.setMulti(nil)
	c.unwatch()
	c.w.SimpleString("OK")
}

func cmdWatch(c *Client, args [][]byte) {
	if c.multi != nil {
		c.err(errWatchInMulti)
		return
	}
	for _, key := range args[1:] {
		if c.watching(key) {
			continue
		}
		var h store.Handle
		c.open(&h, key)
		c.watches = append(c.watches, watch{key: append([]byte(nil), key...), exists: h.Exists(), version: h.Version()})
		h.Close()
	}
	c.w.SimpleString("OK")
}

func (c *Client) watching(key []byte) bool {
	for _, w := range c.watches {
		if string(w.key) == string(key) {
			return true
		}
	}
	return false
}

func cmdUnwatch(c *Client, args [][]byte) {
	c.unwatch()
	c.w.SimpleString("OK")
}

func (c *Client) unwatch() { c.watches = c.watches[:0] }

func cmdExec(c *Client, args [][]byte) {
	m := c.multi
	if m == nil {
		c.err(errExecNoMulti)
		return
	}
	c.setMulti(nil)
	defer c.unwatch()
	if m.dirty {
		c.err(errExecAbort)
		return
	}
	var locks store.Locks
	if m.spansKeyspace() {
		c.n.store.LockAll(&locks)
	} else {
		keys := make([][]byte, 0, len(c.watches)+len(m.queue))
		for _, w := range c.watches {
			keys = append(keys, w.key)
		}
		for _, q := range m.queue {
			keys = q.cmd.appendKeys(keys, q.args)
		}
		c.n.store.LockKeys(&locks, keys)
	}
	c.locks = &locks
	defer func() { c.locks = nil; locks.Unlock() }()
	if c.watchedChanged() {
		c.w.NullArray()
		return
	}
	c.w.Array(len(m.queue))
	for _, q := range m.queue {
		c.call(q.cmd, q.args)
	}
}

// spansKeyspace reports whether a queued command touches the whole keyspace.
func (m *multiState) spansKeyspace() bool {
	for _, q := range m.queue {
		if q.cmd.Flags&flagAllKeys != 0 {
			return true
		}
	}
	return false
}

// watchedChanged compares the watched keys with what WATCH saw; the caller
// holds their shard locks.
func (c *Client) watchedChanged() bool {
	for _, w := range c.watches {
		var h store.Handle
		c.open(&h, w.key)
		changed := h.Exists() != w.exists || (w.exists && h.Version() != w.version)
		h.Close()
		if changed {
			return true
		}
	}
	return false
}

// sortedNames returns a command map's names in order.
func sortedNames(m map[string]*Command) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
