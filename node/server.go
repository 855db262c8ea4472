package node

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedb/sluice/store"
)

// The server family: CONFIG, COMMAND, TIME, FUNCTION FLUSH.

func init() {
	sub := func(name string, arity int, flags Flag, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags, Since: since, Summary: summary, Handler: h}
	}
	register(
		subcommands(&Command{Name: "config", Arity: -2, Group: "server", Since: "2.0.0", Summary: "A container for server configuration commands."},
			sub("get", -3, flagAdmin|flagAnyState, "2.0.0", "Returns the effective values of configuration parameters.", cmdConfigGet),
			sub("set", -4, flagAdmin|flagAnyState, "2.0.0", "Sets configuration parameters in-flight.", cmdConfigSet),
			sub("resetstat", 2, flagAdmin|flagAnyState, "2.0.0", "Resets the server's statistics.", cmdConfigResetStat),
		),
		subcommands(&Command{Name: "command", Arity: -1, Flags: flagLoading | flagStale, Group: "server", Categories: []string{"@connection"}, Since: "2.8.13", Summary: "Returns detailed information about all commands.", Handler: cmdCommandAll},
			sub("count", 2, flagLoading|flagStale, "2.8.13", "Returns a count of commands.", cmdCommandCount),
			sub("list", -2, flagLoading|flagStale, "7.0.0", "Returns a list of command names.", cmdCommandList),
			sub("info", -2, flagLoading|flagStale, "2.8.13", "Returns information about one, multiple or all commands.", cmdCommandInfo),
			sub("docs", -2, flagLoading|flagStale, "7.0.0", "Returns documentary information about one, multiple or all commands.", cmdCommandDocs),
			sub("getkeys", -4, flagLoading|flagStale, "2.8.13", "Extracts the key names from an arbitrary command.", cmdCommandGetKeys),
		),
		&Command{Name: "time", Arity: 1, Flags: flagLoading | flagStale | flagFast, Group: "server", Since: "2.6.0", Summary: "Returns the server time.", Handler: cmdTime},
		subcommands(&Command{Name: "function", Arity: -2, Group: "scripting", Since: "7.0.0", Summary: "A container for function commands. Sluice has no functions, so there is only FLUSH."},
			sub("flush", -2, flagWrite|flagNoScript, "7.0.0", "Deletes all libraries and functions (Sluice has none).", cmdFunctionFlush),
		),
	)
}

// A configParam is one CONFIG GET/SET parameter.
type configParam struct {
	name string
	get  func(n *Node) string
	set  func(n *Node, v string) string // returns an error message, "" on success
}

var configParams []configParam

func init() {
	// limit makes a parameter of one of the client limits, at least least.
	limit := func(least int64, get func(l Limits) int64, set func(l *Limits, v int64)) (func(*Node) string, func(*Node, string) string) {
		return func(n *Node) string { return strconv.FormatInt(get(n.Limits()), 10) },
			func(n *Node, v string) string {
				x, err := ParseMemory(v)
				if err != nil {
					return "argument couldn't be parsed into an integer"
				}
				if x < least {
					return "argument must be between " + strconv.FormatInt(least, 10) + " and 9223372036854775807 inclusive"
				}
				n.updateLimits(func(l *Limits) { set(l, x) })
				return ""
			}
	}
	ro := func(v string) func(*Node) string { return func(*Node) string { return v } }
	maxclientsGet, maxclientsSet := limit(1, func(l Limits) int64 { return int64(l.MaxClients) }, func(l *Limits, v int64) { l.MaxClients = int(v) })
	bulkGet, bulkSet := limit(1<<20, func(l Limits) int64 { return l.ProtoMaxBulkLen }, func(l *Limits, v int64) { l.ProtoMaxBulkLen = v })
	outGet, outSet := limit(0, func(l Limits) int64 { return l.OutputBufferLimit }, func(l *Limits, v int64) { l.OutputBufferLimit = v })
	configParams = []configParam{
		{"maxmemory", func(n *Node) string { return strconv.FormatInt(n.maxMemory.Load(), 10) }, func(n *Node, v string) string {
			x, err := ParseMemory(v)
			if err != nil || x < 0 {
				return "argument must be a memory value"
			}
			n.SetMaxMemory(x)
			return ""
		}},
		{"maxmemory-policy", func(n *Node) string { return store.Policy(n.policy.Load()).String() }, func(n *Node, v string) string {
			p, err := store.ParsePolicy(strings.ToLower(v))
			if err != nil {
				return "argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction"
			}
			n.policy.Store(uint32(p))
			n.store.SetPolicy(p)
			return ""
		}},
		{"maxclients", maxclientsGet, maxclientsSet},
		{"proto-max-bulk-len", bulkGet, bulkSet},
		{"client-output-buffer-limit", outGet, outSet},
		{"timeout", func(n *Node) string { return strconv.FormatInt(int64(n.Limits().IdleTimeout/time.Second), 10) }, func(n *Node, v string) string {
			x, ok := parseInt([]byte(v))
			if !ok || x < 0 {
				return "argument couldn't be parsed into an integer"
			}
			n.updateLimits(func(l *Limits) { l.IdleTimeout = time.Duration(x) * time.Second })
			return ""
		}},
		{"requirepass", func(n *Node) string {
			// Secrets are never shown: a set password reads as a mask.
			if n.acl.defaultOpen() {
				return ""
			}
			return "********"
		}, func(n *Node, v string) string {
			n.acl.setRequirePass(v)
			return ""
		}},
		{"databases", ro("1"), nil},
		{"save", ro(""), nil},
		{"appendonly", ro("no"), nil},
		{"cluster-enabled", ro("no"), nil},
	}
}

// ParseMemory parses a size as redis.conf writes them: a non-negative
// integer of bytes, optionally with a unit (k/kb, m/mb, g/gb; k = 1000,
// kb = 1024), case-insensitive, with no sign or spaces.
func ParseMemory(s string) (int64, error) {
	s = strings.ToLower(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1000}, {"m", 1000 * 1000}, {"g", 1000 * 1000 * 1000}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, ok := parseInt([]byte(s))
	if !ok || v < 0 {
		return 0, strconv.ErrSyntax
	}
	if v > 0 && v > (1<<63-1)/mult {
		return 0, strconv.ErrRange
	}
	return v * mult, nil
}

func cmdConfigGet(c *Client, args [][]byte) {
	// A plain name is answered under the name as the client wrote it, a
	// pattern under the parameters' own names, as Redis 7.0 does.
	type found struct {
		name string
		p    configParam
	}
	var out []found
	seen := map[string]bool{}
	for _, pat := range args[2:] {
		plain := !bytes.ContainsAny(pat, "*?[")
		for _, p := range configParams {
			if !seen[p.name] && globMatch(pat, []byte(p.name), true) {
				seen[p.name] = true
				name := p.name
				if plain {
					name = string(pat)
				}
				out = append(out, found{name, p})
			}
		}
	}
	c.w.Map(len(out))
	for _, f := range out {
		c.w.BulkString(f.name)
		c.w.BulkString(f.p.get(c.n))
	}
}

func cmdConfigSet(c *Client, args [][]byte) {
	if len(args)%2 != 0 {
		c.err(arityError(commands["config"].sub["set"]))
		return
	}
	type change struct {
		p configParam
		v string
	}
	var changes []change
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		var found *configParam
		for j := range configParams {
			if configParams[j].name == name {
				found = &configParams[j]
			}
		}
		if found == nil || found.set == nil {
			c.err("ERR Unknown option or number of arguments for CONFIG SET - '" + string(args[i]) + "'")
			return
		}
		changes = append(changes, change{*found, string(args[i+1])})
	}
	for _, ch := range changes {
		if msg := ch.p.set(c.n, ch.v); msg != "" {
			c.err("ERR CONFIG SET failed (possibly related to argument '" + ch.p.name + "') - " + msg)
			return
		}
	}
	c.w.SimpleString("OK")
}

func cmdConfigResetStat(c *Client, args [][]byte) {
	c.n.stats.reset()
	c.w.SimpleString("OK")
}

func cmdTime(c *Client, args [][]byte) {
	now := time.Now()
	c.w.Array(2)
	c.num = strconv.AppendInt(c.num[:0], now.Unix(), 10)
	c.w.Bulk(c.num)
	c.num = strconv.AppendInt(c.num[:0], int64(now.Nanosecond()/1000), 10)
	c.w.Bulk(c.num)
}

func cmdFunctionFlush(c *Client, args [][]byte) {
	if len(args) == 3 && !eqFold(args[2], "async") && !eqFold(args[2], "sync") || len(args) > 3 {
		c.err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
		return
	}
	c.w.SimpleString("OK")
}

// COMMAND and its subcommands, all answered from the command table.

func cmdCommandAll(c *Client, args [][]byte) {
	names := sortedNames(commands)
	c.w.Array(len(names))
	for _, name := range names {
		c.writeCommandInfo(commands[name])
	}
}

func cmdCommandCount(c *Client, args [][]byte) { c.w.Int(int64(len(commands))) }

func cmdCommandList(c *Client, args [][]byte) {
	var filter func(*Command) bool
	if len(args) > 2 {
		if len(args) != 5 || !eqFold(args[2], "filterby") {
			c.err(errSyntax)
			return
		}
		arg := args[4]
		switch {
		case eqFold(args[3], "pattern"):
			filter = func(cmd *Command) bool { return globMatch(arg, []byte(cmd.fullName), true) }
		case eqFold(args[3], "aclcat"):
			filter = func(cmd *Command) bool {
				for _, cat := range aclCategories(cmd) {
					if eqFold(arg, cat[1:]) {
						return true
					}
				}
				return false
			}
		case eqFold(args[3], "module"):
			filter = func(*Command) bool { return false }
		default:
			c.err(errSyntax)
			return
		}
	}
	var out []string
	for _, name := range sortedNames(commands) {
		cmd := commands[name]
		if filter == nil || filter(cmd) {
			out = append(out, cmd.fullName)
		}
		for _, s := range sortedNames(cmd.sub) {
			if filter == nil || filter(cmd.sub[s]) {
				out = append(out, cmd.sub[s].fullName)
			}
		}
	}
	c.w.Array(len(out))
	for _, s := range out {
		c.w.BulkString(s)
	}
}

// findCommand resolves "get" or "client|list".
func findCommand(name []byte) *Command {
	s := string(appendLower(nil, name))
	parent, sub, ok := strings.Cut(s, "|")
	cmd := commands[parent]
	if cmd == nil || !ok {
		return cmd
	}
	return cmd.sub[sub]
}

func cmdCommandInfo(c *Client, args [][]byte) {
	if len(args) == 2 {
		cmdCommandAll(c, args)
		return
	}
	c.w.Array(len(args) - 2)
	for _, name := range args[2:] {
		if cmd := findCommand(name); cmd != nil {
			c.writeCommandInfo(cmd)
		} else {
			c.w.Null()
		}
	}
}

// writeCommandInfo writes Redis 7's ten-element COMMAND INFO entry.
func (c *Client) writeCommandInfo(cmd *Command) {
	c.w.Array(10)
	c.w.BulkString(cmd.fullName)
	c.w.Int(int64(cmd.Arity))
	flags := cmd.Flags.names()
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.SimpleString(f)
	}
	last := cmd.LastKey
	c.w.Int(int64(cmd.FirstKey))
	c.w.Int(int64(last))
	if cmd.FirstKey == 0 {
		c.w.Int(0)
	} else {
		c.w.Int(int64(cmd.Step))
	}
	cats := aclCategories(cmd)
	c.w.Set(len(cats))
	for _, cat := range cats {
		c.w.SimpleString(cat)
	}
	c.w.Array(0) // tips
	if cmd.FirstKey == 0 {
		c.w.Array(0)
	} else {
		c.writeKeySpec(cmd)
	}
	subs := sortedNames(cmd.sub)
	c.w.Array(len(subs))
	for _, s := range subs {
		c.writeCommandInfo(cmd.sub[s])
	}
}

// writeKeySpec writes the key specs the table's key positions describe: one
// per key for a fixed number of keys (RENAME's source and destination), one
// range for a variable number (MSET).
func (c *Client) writeKeySpec(cmd *Command) {
	if cmd.LastKey < 0 {
		c.w.Array(1)
		c.writeRangeSpec(cmd, cmd.FirstKey, int64(cmd.LastKey))
		return
	}
	n := (cmd.LastKey-cmd.FirstKey)/cmd.Step + 1
	c.w.Array(n)
	for i := range n {
		c.writeRangeSpec(cmd, cmd.FirstKey+i*cmd.Step, 0)
	}
}

func (c *Client) writeRangeSpec(cmd *Command, index int, lastKey int64) {
	access := "RO"
	if cmd.Flags&flagWrite != 0 {
		access = "RW"
	}
	c.w.Map(3)
	c.w.BulkString("flags")
	c.w.Set(1)
	c.w.SimpleString(access)
	c.w.BulkString("begin_search")
	c.w.Map(2)
	c.w.BulkString("type")
	c.w.BulkString("index")
	c.w.BulkString("spec")
	c.w.Map(1)
	c.w.BulkString("index")
	c.w.Int(int64(index))
	c.w.BulkString("find_keys")
	c.w.Map(2)
	c.w.BulkString("type")
	c.w.BulkString("range")
	c.w.BulkString("spec")
	c.w.Map(3)
	c.w.BulkString("lastkey")
	c.w.Int(lastKey)
	c.w.BulkString("keystep")
	c.w.Int(int64(cmd.Step))
	c.w.BulkString("limit")
	c.w.Int(0)
}

// aclCategoryOrder is Redis's order of ACL categories (its category bits),
// with Sluice's own (@ratelimit, @cache) last.
var aclCategoryOrder = []string{"@keyspace", "@read", "@write", "@string", "@admin", "@fast", "@slow",
	"@dangerous", "@connection", "@transaction", "@scripting", "@ratelimit", "@cache"}

// aclCategories derives Redis's ACL categories from the command's flags and
// group, in Redis's order.
func aclCategories(cmd *Command) []string {
	has := map[string]bool{}
	switch {
	case cmd.Flags&flagWrite != 0:
		has["@write"] = true
	case cmd.Flags&flagReadonly != 0:
		has["@read"] = true
	}
	group := cmd.Group
	if cmd.parent != nil {
		group = cmd.parent.Group
	}
	if cmd.Flags&flagAllKeys != 0 {
		has["@keyspace"] = true
	}
	if cmd.Flags&flagNoCategory == 0 {
		switch group {
		case "string":
			has["@string"] = true
		case "generic":
			has["@keyspace"] = true
		case "connection":
			has["@connection"] = true
		case "transactions":
			has["@transaction"] = true
		case "scripting":
			has["@scripting"] = true
		case "ratelimit":
			has["@ratelimit"] = true
		case "cache":
			has["@cache"] = true
		}
	}
	for _, c := range cmd.Categories {
		has[c] = true
	}
	if cmd.parent != nil {
		for _, c := range cmd.parent.Categories {
			has[c] = true
		}
	}
	has["@admin"] = cmd.Flags&flagAdmin != 0
	has["@dangerous"] = cmd.Flags&(flagAdmin|flagDangerous) != 0
	has["@fast"] = cmd.Flags&flagFast != 0
	has["@slow"] = cmd.Flags&flagFast == 0
	var cats []string
	for _, c := range aclCategoryOrder {
		if has[c] {
			cats = append(cats, c)
		}
	}
	return cats
}

func cmdCommandDocs(c *Client, args [][]byte) {
	var cmds []*Command
	if len(args) == 2 {
		for _, name := range sortedNames(commands) {
			cmds = append(cmds, commands[name])
		}
	} else {
		for _, name := range args[2:] {
			if cmd := findCommand(name); cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	c.w.Map(len(cmds))
	for _, cmd := range cmds {
		c.w.BulkString(cmd.fullName)
		c.writeDocs(cmd)
	}
}

func (c *Client) writeDocs(cmd *Command) {
	group := cmd.Group
	if group == "" && cmd.parent != nil {
		group = cmd.parent.Group
	}
	fields := 3
	if cmd.sub != nil {
		fields++
	}
	c.w.Map(fields)
	c.w.BulkString("summary")
	c.w.BulkString(cmd.Summary)
	c.w.BulkString("since")
	c.w.BulkString(cmd.Since)
	c.w.BulkString("group")
	c.w.BulkString(group)
	if cmd.sub != nil {
		c.w.BulkString("subcommands")
		names := sortedNames(cmd.sub)
		c.w.Map(len(names))
		for _, s := range names {
			c.w.BulkString(cmd.sub[s].fullName)
			c.writeDocs(cmd.sub[s])
		}
	}
}

func cmdCommandGetKeys(c *Client, args [][]byte) {
	target := args[2:]
	cmd := commands[string(appendLower(nil, target[0]))]
	if cmd == nil {
		c.err("ERR Invalid command specified")
		return
	}
	if cmd.sub != nil && len(target) > 1 {
		if s := cmd.sub[string(appendLower(nil, target[1]))]; s != nil {
			cmd = s
		}
	}
	if (cmd.Arity > 0 && len(target) != cmd.Arity) || len(target) < -cmd.Arity {
		c.err("ERR Invalid number of arguments specified for command")
		return
	}
	keys := cmd.appendKeys(nil, target)
	if len(keys) == 0 {
		c.err("ERR The command has no key arguments")
		return
	}
	c.w.Array(len(keys))
	for _, k := range keys {
		c.w.Bulk(k)
	}
}
