package node

import (
	"context"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/store"
)

// Client is one connection's session: its protocol version, authentication,
// transaction and tracking state. A protocol server creates it with Connect
// and calls Exec for each command, from one goroutine at a time.
type Client struct {
	n       *Node
	conn    Conn
	id      int64
	addr    string
	laddr   string
	created time.Time

	lastActive atomic.Int64 // Unix ms of the last command
	killed     atomic.Bool

	mu       sync.Mutex // guards the fields CLIENT LIST reads from other clients
	name     string
	libName  string
	libVer   string
	lastCmd  atomic.Pointer[Command] // read by CLIENT LIST from other clients
	looked   *Command                // the last top-level command looked up, to skip the map when it repeats
	ncmd     uint32                  // commands run, for sampling their timing
	multiLen atomic.Int64            // commands queued in MULTI, -1 outside one (CLIENT LIST)

	proto      int
	resp3      atomic.Bool // proto == 3, for pushes sent from other goroutines
	authed     bool
	user       atomic.Pointer[aclEntry] // the authenticated user; read by ACL DELUSER
	redirects  bool                     // answered with -MOVED rather than forwarded (cluster-aware)
	peer       bool                     // runs commands forwarded by another node: never routed
	ctx        context.Context          // bounds forwarding; the caller's for Do, nil for network clients
	forwardErr error                    // why the last forward failed, wrapped into Do's error

	replPending bool       // a write since the last AwaitReplicas went to replicas
	replWaits   []replWait // how far this client's writes went into each peer's stream
	writePhase  uint32     // 1 + the phase of the write being run (see replicator.writers), 0 outside

	replyOff bool // CLIENT REPLY OFF
	skipNext bool // CLIENT REPLY SKIP: silence the next command
	out      Writer
	discard  discardWriter

	// The command being run.
	w       Writer
	failed  bool         // the handler replied with an error
	locks   *store.Locks // shards held for a multi-key command or EXEC, else nil
	lockBuf store.Locks
	keys    [][]byte // scratch: the keys of the command
	lower   []byte   // scratch: the lower-cased command name
	num     []byte   // scratch: number formatting
	scratch []byte   // scratch: a value copied out of the store

	multi   *multiState
	watches []watch
	track   trackState
}

// Connect registers a new client of a protocol server. conn may be nil for a
// client with no connection (the embedded API). It fails with ErrMaxClients
// when maxclients are connected.
func (n *Node) Connect(conn Conn, addr, laddr string) (*Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if conn != nil && len(n.clients) >= n.Limits().MaxClients {
		n.stats.rejectedConns.Add(1)
		return nil, ErrMaxClients
	}
	c := n.newClient(conn, addr, laddr)
	if conn != nil {
		n.clients[c.id] = c
		n.stats.totalConns.Add(1)
	}
	return c, nil
}

func (n *Node) newClient(conn Conn, addr, laddr string) *Client {
	c := &Client{
		n:       n,
		conn:    conn,
		id:      n.nextID.Add(1),
		addr:    addr,
		laddr:   laddr,
		created: time.Now(),
		proto:   2,
	}
	c.user.Store(n.acl.entry("default"))
	c.multiLen.Store(-1)
	c.authed = n.acl.defaultOpen()
	c.lastActive.Store(n.coarseMs.Load())
	return c
}

// ID is the client's id (CLIENT ID).
func (c *Client) ID() int64 { return c.id }

// Authenticated reports whether the client may run commands other than AUTH
// and HELLO. Protocol servers read it from the goroutine that calls Exec to
// apply Redis's tighter input limits to unauthenticated clients.
func (c *Client) Authenticated() bool { return c.authed }

// Disconnect unregisters the client; the protocol server calls it when the
// connection ends.
func (c *Client) Disconnect() {
	c.n.tracking.forget(c)
	c.n.mu.Lock()
	delete(c.n.clients, c.id)
	c.n.mu.Unlock()
}

// Exec runs one command and writes its reply to w. It reports whether the
// connection should be closed after the reply is flushed (QUIT, CLIENT KILL of
// itself).
func (c *Client) Exec(w Writer, args [][]byte) (closeConn bool) {
	if len(args) == 0 {
		return false
	}
	c.out = w
	c.w = w
	if c.replyOff || c.skipNext {
		c.discard.out = w
		c.w = &c.discard
	}
	c.skipNext = false
	c.lastActive.Store(c.n.coarseMs.Load())
	cmd, ok := c.lookup(args)
	if !ok {
		c.flagMulti()
		return false
	}
	if !c.authed && cmd.Flags&flagNoAuth == 0 {
		c.flagMulti()
		c.reject(cmd, errNoAuth)
		return false
	}
	if cmd.Flags&flagNoAuth == 0 {
		if u := c.user.Load().user(); !u.allCommands || !u.allKeys {
			if msg := u.permitted(cmd, args); msg != "" {
				c.flagMulti()
				c.reject(cmd, msg)
				return false
			}
		}
	}
	if cmd.Flags&flagDenyOOM != 0 && c.n.overMemory() {
		c.flagMulti()
		c.reject(cmd, errOOM)
		return false
	}
	if c.multi != nil && cmd.Flags&flagNoMulti == 0 {
		if c.n.cluster != nil && !c.route(cmd, args) {
			c.flagMulti()
			return false
		}
		c.multi.queue = append(c.multi.queue, queued{cmd: cmd, args: copyArgs(args)})
		c.multiLen.Store(int64(len(c.multi.queue)))
		w.SimpleString("QUEUED")
		return false
	}
	c.call(cmd, args)
	return c.killed.Load()
}

// lookup finds the command (or subcommand) and checks its arity, replying
// with Redis's errors when either is wrong.
func (c *Client) lookup(args [][]byte) (*Command, bool) {
	// Clients tend to repeat a command: compare with the last one before
	// lowering the name and hashing it into the table.
	cmd := c.looked
	if cmd == nil || !eqFold(args[0], cmd.Name) {
		c.lower = appendLower(c.lower[:0], args[0])
		cmd = commands[string(c.lower)]
		c.looked = cmd
	}
	if cmd == nil {
		msg := unknownCommandError(args)
		c.n.stats.errorReply(msg)
		c.w.Error(msg)
		return nil, false
	}
	if cmd.sub != nil && !(len(args) == 1 && cmd.Handler != nil) {
		if len(args) < 2 {
			c.reject(cmd, arityError(cmd))
			return nil, false
		}
		c.lower = appendLower(c.lower[:0], args[1])
		sub := cmd.sub[string(c.lower)]
		if sub == nil {
			c.reject(cmd, "ERR unknown subcommand '"+truncate(string(args[1]), 128)+"'. Try "+strings.ToUpper(cmd.Name)+" HELP.")
			return nil, false
		}
		cmd = sub
	}
	if (cmd.Arity > 0 && len(args) != cmd.Arity) || len(args) < -cmd.Arity {
		c.reject(cmd, arityError(cmd))
		return nil, false
	}
	return cmd, true
}

// call runs a command now, holding the shard locks of all its keys when it
// has several, and accounts for it.
func (c *Client) call(cmd *Command, args [][]byte) {
	// One command in timingSample is timed: reading the clock twice costs
	// as much as a GET itself on some machines.
	c.ncmd++
	timed := c.ncmd%timingSample == 0
	var start time.Time
	if timed {
		start = time.Now()
	}
	c.failed = false
	defer c.recoverPanic(cmd)
	if c.n.cluster != nil {
		if cmd.Flags&flagWrite != 0 && c.writePhase == 0 {
			c.enterWrite()
			defer c.leaveWrite()
		}
		if !c.route(cmd, args) {
			return
		}
	}
	if c.locks == nil && cmd.keyCount(len(args)) > 1 {
		c.keys = cmd.appendKeys(c.keys[:0], args)
		c.n.store.LockKeys(&c.lockBuf, c.keys)
		c.locks = &c.lockBuf
		defer func() { c.locks = nil; c.lockBuf.Unlock() }()
	}
	if c.track.on && cmd.Flags&flagReadonly != 0 {
		c.trackRead(cmd, args)
	}
	cmd.Handler(c, args)
	if cmd.Flags&flagWrite != 0 {
		if !c.failed && c.n.tracking.active() {
			c.n.tracking.invalidateKeys(c, cmd, args)
		}
		if c.n.cluster != nil {
			c.replicate(cmd, args)
		}
	}
	if c.track.caching != 0 && c.multi == nil && cmd.Name != "client" && cmd.parent == nil {
		c.track.caching = 0
	}
	var took time.Duration
	if timed {
		took = time.Since(start)
	}
	c.n.stats.record(cmd, took, timed, c.failed)
	if c.lastCmd.Load() != cmd {
		c.lastCmd.Store(cmd)
	}
}

// recoverPanic turns a handler's panic into an error reply, so one bad
// command cannot take the server down. The handler's deferred Closes have
// released its shard locks by the time this runs.
func (c *Client) recoverPanic(cmd *Command) {
	r := recover()
	if r == nil {
		return
	}
	c.n.log.Error("command panicked", "command", cmd.fullName, "panic", r, "stack", string(debug.Stack()))
	c.err("ERR internal error running '" + cmd.fullName + "'")
}

// reject answers a command that was refused before it ran.
func (c *Client) reject(cmd *Command, msg string) {
	c.n.stats.reject(cmd)
	if cmd.Name == "exec" {
		// A refused EXEC discards the transaction, as in Redis.
		c.setMulti(nil)
		c.unwatch()
		msg = "EXECABORT Transaction discarded because of: " + strings.TrimPrefix(msg, "ERR ")
	}
	c.n.stats.errorReply(msg)
	c.w.Error(msg)
}

// err writes an error reply and marks the command as failed.
func (c *Client) err(msg string) {
	c.failed = true
	c.n.stats.errorReply(msg)
	c.w.Error(msg)
}

// releaseScratch drops a large scratch buffer so one big value does not stay
// pinned by an idle connection.
func (c *Client) releaseScratch() {
	if cap(c.scratch) > 64<<10 {
		c.scratch = nil
	}
}

func copyArgs(args [][]byte) [][]byte {
	size := 0
	for _, a := range args {
		size += len(a)
	}
	buf := make([]byte, 0, size)
	out := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		out[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	return out
}

func appendLower(dst, s []byte) []byte {
	for _, b := range s {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// discardWriter swallows replies (CLIENT REPLY OFF and SKIP) but still
// switches the protocol of the real writer.
type discardWriter struct{ out Writer }

func (d *discardWriter) SimpleString(string)     {}
func (d *discardWriter) Error(string)            {}
func (d *discardWriter) Int(int64)               {}
func (d *discardWriter) Bulk([]byte)             {}
func (d *discardWriter) BulkString(string)       {}
func (d *discardWriter) Null()                   {}
func (d *discardWriter) NullArray()              {}
func (d *discardWriter) Array(int)               {}
func (d *discardWriter) Map(int)                 {}
func (d *discardWriter) Set(int)                 {}
func (d *discardWriter) Double(float64)          {}
func (d *discardWriter) Bool(bool)               {}
func (d *discardWriter) Verbatim(string, []byte) {}
func (d *discardWriter) Push(int)                {}
func (d *discardWriter) SetProtocol(v int)       { d.out.SetProtocol(v) }
