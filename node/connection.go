package node

import (
	"strconv"
	"strings"
	"time"
)

// The connection family: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET.

// RedisVersion is the Redis release whose behaviour Sluice follows; clients
// that read the server version for feature checks see it.
const RedisVersion = "7.0.15"

func init() {
	conn := func(name string, arity int, flags Flag, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags, Group: "connection", Since: since, Summary: summary, Handler: h}
	}
	register(
		conn("ping", -1, flagFast, "1.0.0", "Returns the server's liveliness response.", cmdPing),
		conn("echo", 2, flagLoading|flagStale|flagFast, "1.0.0", "Returns the given string.", cmdEcho),
		conn("hello", -1, flagAnyState|flagNoAuth|flagFast|flagAllowBusy, "6.0.0", "Handshakes with the Redis server.", cmdHello),
		conn("auth", -2, flagAnyState|flagNoAuth|flagFast|flagAllowBusy, "1.0.0", "Authenticates the connection.", cmdAuth),
		conn("select", 2, flagLoading|flagStale|flagFast, "1.0.0", "Changes the selected database.", cmdSelect),
		conn("quit", -1, flagAnyState|flagNoAuth|flagFast|flagNoMulti|flagAllowBusy, "1.0.0", "Closes the connection.", cmdQuit),
		conn("reset", 1, flagAnyState|flagNoAuth|flagFast|flagNoMulti|flagAllowBusy, "6.2.0", "Resets the connection.", cmdReset),
	)
}

func cmdPing(c *Client, args [][]byte) {
	switch len(args) {
	case 1:
		c.w.SimpleString("PONG")
	case 2:
		c.w.Bulk(args[1])
	default:
		c.err(arityError(commands["ping"]))
	}
}

func cmdEcho(c *Client, args [][]byte) { c.w.Bulk(args[1]) }

func cmdSelect(c *Client, args [][]byte) {
	db, ok := parseInt(args[1])
	switch {
	case !ok:
		c.err(errNotInt)
	case db != 0:
		c.err(errSelectCluster)
	default:
		c.w.SimpleString("OK")
	}
}

func cmdQuit(c *Client, args [][]byte) {
	c.w.SimpleString("OK")
	c.killed.Store(true)
}

// login authenticates as user (the default user when nil) and reports
// whether the password was right.
func (c *Client) login(user, pass []byte) bool {
	if user == nil {
		user = []byte("default")
	}
	e := c.n.acl.authenticate(user, pass)
	if e == nil {
		return false
	}
	c.user.Store(e)
	c.authed = true
	return true
}

func cmdAuth(c *Client, args [][]byte) {
	if len(args) > 3 {
		c.err(errSyntax)
		return
	}
	var user []byte
	pass := args[1]
	if len(args) == 3 {
		user, pass = args[1], args[2]
	}
	if user == nil && c.n.acl.defaultOpen() {
		c.err(errNoPassSet)
		return
	}
	if !c.login(user, pass) {
		c.n.log.Warn("authentication failed", "client", c.addr)
		c.err(errWrongPass)
		return
	}
	c.w.SimpleString("OK")
}

func cmdHello(c *Client, args [][]byte) {
	proto := c.proto
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			c.err("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			c.err(errNoProto)
			return
		}
		proto = int(v)
	}
	var user, pass []byte
	hasAuth := false
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch {
		case eqFold(args[i], "auth") && more >= 2:
			user, pass, hasAuth = args[i+1], args[i+2], true
			i += 2
		case eqFold(args[i], "setname") && more >= 1:
			name := args[i+1]
			if msg := validName(name); msg != "" {
				c.err(msg)
				return
			}
			c.setName(string(name)) // at once, as Redis 7.0 does, even if a later option fails
			i++
		default:
			c.err("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			return
		}
	}
	if hasAuth {
		if !c.login(user, pass) {
			c.err(errWrongPass)
			return
		}
	}
	if !c.authed {
		c.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	c.proto = proto
	c.resp3.Store(proto == 3)
	c.w.SetProtocol(proto)
	c.w.Map(7)
	c.w.BulkString("server")
	c.w.BulkString("sluice")
	c.w.BulkString("version")
	c.w.BulkString(RedisVersion)
	c.w.BulkString("proto")
	c.w.Int(int64(proto))
	c.w.BulkString("id")
	c.w.Int(c.id)
	c.w.BulkString("mode")
	c.w.BulkString("standalone")
	c.w.BulkString("role")
	c.w.BulkString("master")
	c.w.BulkString("modules")
	c.w.Array(0)
}

func cmdReset(c *Client, args [][]byte) {
	c.setMulti(nil)
	c.unwatch()
	c.n.tracking.disable(c)
	c.track = trackState{}
	c.replyOff, c.skipNext = false, false
	c.setName("")
	c.user.Store(c.n.acl.entry("default"))
	c.authed = c.n.acl.defaultOpen()
	c.proto = 2
	c.resp3.Store(false)
	c.w.SetProtocol(2)
	c.w.SimpleString("RESET")
}

// validName checks a CLIENT SETNAME name as Redis does.
func validName(name []byte) string {
	for _, b := range name {
		if b < '!' || b > '~' {
			return "ERR Client names cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

func (c *Client) setName(name string) {
	c.mu.Lock()
	c.name = name
	c.mu.Unlock()
}

// The CLIENT command.

func init() {
	sub := func(name string, arity int, flags Flag, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags | flagAnyState, Since: since, Summary: summary, Handler: h}
	}
	help := sub("help", 2, 0, "5.0.0", "Returns helpful text about the different subcommands.", cmdClientHelp)
	help.Flags &^= flagNoScript
	register(subcommands(&Command{Name: "client", Arity: -2, Flags: flagNoCategory, Group: "connection", Since: "2.4.0", Summary: "A container for client connection commands."},
		sub("id", 2, 0, "5.0.0", "Returns the unique client ID of the connection.", func(c *Client, _ [][]byte) { c.w.Int(c.id) }),
		sub("setname", 3, 0, "2.6.9", "Sets the connection name.", cmdClientSetName),
		sub("getname", 2, 0, "2.6.9", "Returns the name of the connection.", cmdClientGetName),
		sub("setinfo", 4, 0, "7.2.0", "Sets information specific to the client or connection.", cmdClientSetInfo),
		sub("info", 2, 0, "6.2.0", "Returns information about the connection.", cmdClientInfo),
		sub("list", -2, flagAdmin, "2.4.0", "Lists open connections.", cmdClientList),
		sub("kill", -3, flagAdmin, "2.4.0", "Terminates open connections.", cmdClientKill),
		sub("reply", 3, 0, "3.2.0", "Instructs the server whether to reply to commands.", cmdClientReply),
		sub("tracking", -3, 0, "6.0.0", "Controls server-assisted client-side caching for the connection.", cmdClientTracking),
		sub("caching", 3, 0, "6.0.0", "Instructs the server whether to track the keys in the next request.", cmdClientCaching),
		sub("getredir", 2, 0, "6.0.0", "Returns the client ID to which the connection's tracking notifications are redirected.", func(c *Client, _ [][]byte) { c.w.Int(c.track.redirect()) }),
		sub("trackinginfo", 2, 0, "6.2.0", "Returns information about server-assisted client-side caching for the connection.", cmdClientTrackingInfo),
		help,
	))
}

func cmdClientSetName(c *Client, args [][]byte) {
	if msg := validName(args[2]); msg != "" {
		c.err(msg)
		return
	}
	c.setName(string(args[2]))
	c.w.SimpleString("OK")
}

func cmdClientGetName(c *Client, args [][]byte) {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name == "" {
		c.w.Null()
		return
	}
	c.w.BulkString(name)
}

func cmdClientSetInfo(c *Client, args [][]byte) {
	val := string(args[3])
	if strings.ContainsAny(val, " \n") {
		c.err("ERR " + string(args[2]) + " cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case eqFold(args[2], "lib-name"):
		c.libName = val
	case eqFold(args[2], "lib-ver"):
		c.libVer = val
	default:
		c.failed = true
		c.w.Error("ERR Unrecognized option '" + string(args[2]) + "'")
		return
	}
	c.w.SimpleString("OK")
}

func cmdClientReply(c *Client, args [][]byte) {
	switch {
	case eqFold(args[2], "on"):
		c.replyOff, c.skipNext = false, false
		c.w = c.out
		c.w.SimpleString("OK")
	case eqFold(args[2], "off"):
		c.replyOff = true
	case eqFold(args[2], "skip"):
		if !c.replyOff {
			c.skipNext = true
		}
	default:
		c.err(errSyntax)
	}
}

func cmdClientInfo(c *Client, args [][]byte) {
	c.w.Verbatim("txt", c.appendInfo(nil, args))
}

func cmdClientList(c *Client, args [][]byte) {
	var ids map[int64]bool
	for i := 2; i < len(args); i++ {
		switch {
		case eqFold(args[i], "type") && i+1 < len(args):
			i++
			if !eqFold(args[i], "normal") && !eqFold(args[i], "master") && !eqFold(args[i], "replica") && !eqFold(args[i], "pubsub") {
				c.err("ERR Unknown client type '" + string(args[i]) + "'")
				return
			}
			if !eqFold(args[i], "normal") {
				ids = map[int64]bool{}
			}
		case eqFold(args[i], "id") && i+1 < len(args):
			if ids == nil {
				ids = map[int64]bool{}
			}
			for i++; i < len(args); i++ {
				id, ok := parseInt(args[i])
				if !ok {
					c.err("ERR Invalid client ID")
					return
				}
				ids[id] = true
			}
		default:
			c.err(errSyntax)
			return
		}
	}
	var out []byte
	for _, other := range c.n.clientsSorted() {
		if ids != nil && !ids[other.id] {
			continue
		}
		var a [][]byte
		if other == c {
			a = args
		}
		out = other.appendInfo(out, a)
	}
	c.w.Verbatim("txt", out)
}

// appendInfo appends the client's CLIENT LIST line. args is the command the
// client is running (for qbuf and argv-mem), nil for another client.
func (c *Client) appendInfo(b []byte, args [][]byte) []byte {
	c.mu.Lock()
	name, lib, ver := c.name, c.libName, c.libVer
	c.mu.Unlock()
	last := "NULL"
	if cmd := c.lastCmd.Load(); cmd != nil {
		last = cmd.fullName
	}
	if args != nil {
		last = commandFullName(args)
	}
	now := time.Now()
	qbuf, argvMem := 0, 0
	for _, a := range args {
		qbuf += 1 + len(strconv.Itoa(len(a))) + 2 + len(a) + 2
		argvMem += len(a)
	}
	if args != nil {
		qbuf += 1 + len(strconv.Itoa(len(args))) + 2
	}
	multi := c.multiLen.Load()
	flags := "N"
	if multi >= 0 {
		flags = "x"
	}
	b = append(b, "id="...)
	b = strconv.AppendInt(b, c.id, 10)
	b = append(b, " addr="...)
	b = append(b, c.addr...)
	b = append(b, " laddr="...)
	b = append(b, c.laddr...)
	b = append(b, " fd=-1 name="...)
	b = append(b, name...)
	b = append(b, " age="...)
	b = strconv.AppendInt(b, int64(now.Sub(c.created)/time.Second), 10)
	b = append(b, " idle="...)
	b = strconv.AppendInt(b, (now.UnixMilli()-c.lastActive.Load())/1000, 10)
	b = append(b, " flags="...)
	b = append(b, flags...)
	b = append(b, " db=0 sub=0 psub=0 ssub=0 multi="...)
	b = strconv.AppendInt(b, multi, 10)
	b = append(b, " qbuf="...)
	b = strconv.AppendInt(b, int64(qbuf), 10)
	b = append(b, " qbuf-free=0 argv-mem="...)
	b = strconv.AppendInt(b, int64(argvMem), 10)
	b = append(b, " multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem="...)
	b = strconv.AppendInt(b, int64(argvMem), 10)
	b = append(b, " events=r cmd="...)
	b = append(b, last...)
	b = append(b, " user="...)
	b = append(b, c.user.Load().user().name...)
	b = append(b, " redir="...)
	b = strconv.AppendInt(b, c.n.tracking.redirectOf(c), 10)
	b = append(b, " resp="...)
	proto := int64(2)
	if c.resp3.Load() {
		proto = 3
	}
	b = strconv.AppendInt(b, proto, 10)
	b = append(b, " lib-name="...)
	b = append(b, lib...)
	b = append(b, " lib-ver="...)
	b = append(b, ver...)
	return append(b, '\n')
}

// commandFullName is "name" or "name|sub" for an argument vector.
func commandFullName(args [][]byte) string {
	cmd := commands[string(appendLower(nil, args[0]))]
	if cmd == nil {
		return ""
	}
	if cmd.sub != nil && len(args) > 1 {
		if sub := cmd.sub[string(appendLower(nil, args[1]))]; sub != nil {
			return sub.fullName
		}
	}
	return cmd.fullName
}

func cmdClientKill(c *Client, args [][]byte) {
	if len(args) == 3 {
		// The old form: CLIENT KILL addr:port.
		for _, other := range c.n.clientsSorted() {
			if other.addr == string(args[2]) {
				c.w.SimpleString("OK")
				other.kill(c)
				return
			}
		}
		c.err("ERR No such client")
		return
	}
	var (
		id          int64
		addr, laddr string
		skipMe      = true
		typed       string
	)
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.err(errSyntax)
			return
		}
		opt, val := args[i], args[i+1]
		switch {
		case eqFold(opt, "id"):
			v, ok := parseInt(val)
			if !ok || v <= 0 {
				c.err("ERR client-id should be greater than 0")
				return
			}
			id = v
		case eqFold(opt, "type"):
			t := strings.ToLower(string(val))
			if t != "normal" && t != "master" && t != "slave" && t != "replica" && t != "pubsub" {
				c.err("ERR Unknown client type '" + string(val) + "'")
				return
			}
			typed = t
		case eqFold(opt, "addr"):
			addr = string(val)
		case eqFold(opt, "laddr"):
			laddr = string(val)
		case eqFold(opt, "user"):
			if string(val) != "default" {
				c.err("ERR No such user '" + string(val) + "'")
				return
			}
		case eqFold(opt, "skipme"):
			switch {
			case eqFold(val, "yes"):
				skipMe = true
			case eqFold(val, "no"):
				skipMe = false
			default:
				c.err(errSyntax)
				return
			}
		default:
			c.err(errSyntax)
			return
		}
	}
	var victims []*Client
	for _, other := range c.n.clientsSorted() {
		switch {
		case id != 0 && other.id != id,
			addr != "" && other.addr != addr,
			laddr != "" && other.laddr != laddr,
			typed != "" && typed != "normal",
			skipMe && other == c:
			continue
		}
		victims = append(victims, other)
	}
	c.w.Int(int64(len(victims)))
	for _, v := range victims {
		v.kill(c)
	}
}

// kill disconnects the client; killing oneself closes after the reply.
func (c *Client) kill(by *Client) {
	c.killed.Store(true)
	if c != by && c.conn != nil {
		_ = c.conn.Close()
	}
}

func cmdClientHelp(c *Client, args [][]byte) {
	lines := []string{
		"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	}
	for _, name := range sortedNames(commands["client"].sub) {
		s := commands["client"].sub[name]
		lines = append(lines, strings.ToUpper(name), "    "+s.Summary)
	}
	c.w.Array(len(lines))
	for _, l := range lines {
		c.w.SimpleString(l)
	}
}
