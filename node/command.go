package node

import (
	"bytes"
	"strings"
)

// Command describes one command once, for everything that needs to know it:
// dispatch, arity checks, COMMAND INFO/DOCS/LIST, MULTI queueing, tracking,
// the embedded Do and, later, ACLs and cluster routing.
type Command struct {
	Name  string // lower case; for a subcommand, the subcommand's name
	Arity int    // Redis's convention: n = exactly n arguments, -n = at least n
	Flags Flag
	// FirstKey, LastKey and Step locate the keys among the arguments as in
	// Redis's legacy key specs (LastKey -1 = the last argument); FirstKey 0 = none.
	FirstKey, LastKey, Step int
	Group                   string // COMMAND DOCS group: string, generic, connection, server, transactions
	Summary                 string
	Since                   string // the Redis version the command first appeared in
	// Categories are ACL categories beyond those its flags and group imply.
	Categories []string
	Handler    func(c *Client, args [][]byte)

	id       int                 // index in commandList, for per-user permissions
	fullName string              // "client|setname" for a subcommand
	parent   *Command            // the container of a subcommand
	sub      map[string]*Command // a container's subcommands
}

// Flag is a set of command properties, named as Redis names them.
type Flag uint32

const (
	flagWrite    Flag = 1 << iota // modifies data
	flagReadonly                  // reads data
	flagDenyOOM                   // may grow memory: refused when over maxmemory
	flagAdmin                     // administrative
	flagFast                      // O(1) or O(log N)
	flagNoAuth                    // runs before AUTH
	flagNoMulti                   // runs at once inside MULTI instead of being queued
	flagLoading                   // allowed while loading
	flagStale                     // allowed on a stale replica
	flagAllKeys                   // touches the whole keyspace (locks every shard inside EXEC)
	flagNoScript
	flagDangerous  // ACL category @dangerous without being admin (KEYS, FLUSHALL)
	flagAllowBusy  // documentary, as Redis reports it
	flagNoCategory // a container: no ACL category of its group
	flagSkipSlowlog
)

// flagAnyState are the flags Redis gives commands that run in any server
// state (loading, stale replica) and never in scripts.
const flagAnyState = flagNoScript | flagLoading | flagStale

// flagOrder is how COMMAND INFO lists flags: Redis's order, Redis's names.
// flagNoMulti, flagAllKeys and flagDangerous are Sluice's own and not shown.
var flagOrder = []struct {
	flag Flag
	name string
}{
	{flagWrite, "write"}, {flagReadonly, "readonly"}, {flagDenyOOM, "denyoom"}, {flagAdmin, "admin"},
	{flagNoScript, "noscript"}, {flagLoading, "loading"}, {flagStale, "stale"}, {flagFast, "fast"},
	{flagSkipSlowlog, "skip_slowlog"}, {flagNoAuth, "no_auth"}, {flagAllowBusy, "allow_busy"},
}

// names lists the flags in Redis's COMMAND INFO spelling and order.
func (f Flag) names() []string {
	var out []string
	for _, fl := range flagOrder {
		if f&fl.flag != 0 {
			out = append(out, fl.name)
		}
	}
	return out
}

// commands is the command table, keyed by lower-case name.
var commands = map[string]*Command{}

// commandList holds every command and subcommand, indexed by Command.id.
var commandList []*Command

// register adds commands to the table. Containers list their subcommands.
func register(cmds ...*Command) {
	for _, c := range cmds {
		c.fullName = c.Name
		if c.Flags&flagWrite != 0 && c.Flags&flagReadonly != 0 {
			panic("command " + c.Name + " is both write and readonly")
		}
		if _, dup := commands[c.Name]; dup {
			panic("command " + c.Name + " registered twice")
		}
		commands[c.Name] = c
		c.id = len(commandList)
		commandList = append(commandList, c)
		for _, name := range sortedNames(c.sub) {
			s := c.sub[name]
			s.id = len(commandList)
			commandList = append(commandList, s)
		}
	}
}

// subcommands attaches subcommands to a container command.
func subcommands(parent *Command, subs ...*Command) *Command {
	parent.sub = make(map[string]*Command, len(subs))
	for _, s := range subs {
		s.parent = parent
		s.fullName = parent.Name + "|" + s.Name
		if s.Group == "" {
			s.Group = parent.Group
		}
		parent.sub[s.Name] = s
	}
	return parent
}

// keyCount is how many keys a call with nargs arguments names.
func (c *Command) keyCount(nargs int) int {
	if c.FirstKey == 0 || nargs <= c.FirstKey {
		return 0
	}
	last := c.LastKey
	if last < 0 {
		last = nargs + last
	}
	if last >= nargs {
		last = nargs - 1
	}
	if last < c.FirstKey {
		return 0
	}
	return (last-c.FirstKey)/c.Step + 1
}

// appendKeys appends the keys among args to dst.
func (c *Command) appendKeys(dst [][]byte, args [][]byte) [][]byte {
	n := c.keyCount(len(args))
	for i := 0; i < n; i++ {
		dst = append(dst, args[c.FirstKey+i*c.Step])
	}
	return dst
}

func arityError(c *Command) string {
	return "ERR wrong number of arguments for '" + c.fullName + "' command"
}

// unknownCommandError words the error as Redis does, C strings included:
// each argument is cut at its first NUL, and the arguments shown share a
// budget of 128 characters.
func unknownCommandError(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(truncate(cString(args[0]), 128))
	b.WriteString("', with args beginning with: ")
	start := b.Len()
	for _, a := range args[1:] {
		used := b.Len() - start
		if used >= 128 {
			break
		}
		b.WriteByte('\'')
		b.WriteString(truncate(cString(a), 128-used))
		b.WriteString("' ")
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(b.String())
}

// cString is what C's %s prints of b: the bytes before the first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
