package test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Scenarios for server commands: COMMAND, CONFIG, INFO, TIME.

// infoSection returns a comparer for INFO replies: the same type, CRLF line
// ends, the same "# Section" headers in the same order, each field Redis
// reports among fields present in Sluice's reply too, and for the keyspace
// the same key and expiry counts.
func infoSection(fields ...string) func(a, b Reply) string {
	return func(a, b Reply) string {
		if a.Kind != b.Kind {
			return "want the same reply type as Redis"
		}
		if strings.Contains(strings.ReplaceAll(b.Str, "\r\n", ""), "\n") {
			return "want CRLF line ends"
		}
		rh, rf := parseInfo(a.Str)
		sh, sf := parseInfo(b.Str)
		if !slices.Equal(rh, sh) {
			return fmt.Sprintf("want sections %v, got %v", rh, sh)
		}
		var missing []string
		for _, f := range fields {
			_, inRedis := rf[f]
			if _, ok := sf[f]; inRedis && !ok {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("fields missing: %s", strings.Join(missing, " "))
		}
		if rf["db0"] != "" || sf["db0"] != "" {
			if keyspaceCounts(rf["db0"]) != keyspaceCounts(sf["db0"]) {
				return fmt.Sprintf("want db0:%s, got db0:%s", rf["db0"], sf["db0"])
			}
		}
		return ""
	}
}

// parseInfo splits an INFO reply into its section headers and fields.
func parseInfo(s string) (headers []string, fields map[string]string) {
	fields = map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if h, ok := strings.CutPrefix(line, "# "); ok {
			headers = append(headers, h)
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return headers, fields
}

// keyspaceCounts keeps the keys= and expires= of a keyspace line; avg_ttl
// depends on timing.
func keyspaceCounts(v string) string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if strings.HasPrefix(f, "keys=") || strings.HasPrefix(f, "expires=") {
			out = append(out, f)
		}
	}
	return strings.Join(out, ",")
}

// timeReply compares TIME replies: two bulk strings of digits, seconds
// within 2 of Redis's, microseconds below a million.
func timeReply(a, b Reply) string {
	for _, r := range []Reply{a, b} {
		if r.Kind != '*' || len(r.Elems) != 2 || r.Elems[0].Kind != '$' || r.Elems[1].Kind != '$' {
			return "want an array of two bulk strings"
		}
	}
	rs, _ := strconv.ParseInt(a.Elems[0].Str, 10, 64)
	ss, err1 := strconv.ParseInt(b.Elems[0].Str, 10, 64)
	us, err2 := strconv.ParseInt(b.Elems[1].Str, 10, 64)
	if err1 != nil || err2 != nil || ss < rs-2 || ss > rs+2 || us < 0 || us > 999999 {
		return "want the same wall-clock time as Redis"
	}
	return ""
}

// docsKeys compares COMMAND DOCS replies by shape: the same command names,
// each documented with at least summary, since and group. Redis's complexity
// and argument trees are not reproduced (docs/compatibility.md).
func docsKeys(a, b Reply) string {
	if why := mapKeys(a, b); why != "" {
		return why
	}
	rb, _ := b.Pairs()
	for _, p := range rb {
		keys, _ := pairKeys(p[1])
		have := strings.Join(keys, " ")
		for _, k := range []string{"group", "since", "summary"} {
			if !strings.Contains(have, k) {
				return p[0].Str + ": no " + k
			}
		}
	}
	return ""
}

// commandCountMatchesList checks on Sluice that COMMAND COUNT equals the
// number of top-level names in COMMAND LIST (Redis lists subcommands too, as
// "client|id"). Sluice has fewer commands than Redis, so the two are compared
// with each other, not with Redis's.
func commandCountMatchesList(c *rawConn) string {
	count := c.Do("COMMAND", "COUNT")
	list := c.Do("COMMAND", "LIST")
	top := 0
	for _, e := range list.Elems {
		if !strings.Contains(e.Str, "|") {
			top++
		}
	}
	n, ok := count.Int()
	if !ok || list.Kind != '*' || int(n) != top {
		return fmt.Sprintf("COMMAND COUNT %s, COMMAND LIST has %d top-level names", count, top)
	}
	return ""
}

// commandListHasContract checks on Sluice that COMMAND LIST names every
// standard command and subcommand of DESIGN §4 (CLUSTER, READONLY and
// READWRITE aside), subcommands included as Redis lists them.
func commandListHasContract(c *rawConn) string {
	list := c.Do("COMMAND", "LIST")
	have := map[string]bool{}
	for _, e := range list.Elems {
		have[e.Str] = true
	}
	var missing []string
	for _, name := range append(strings.Fields(`client|id client|setname client|getname client|setinfo client|info client|list client|kill
		command|count command|docs command|info command|list config|get config|set`), contractCommands...) {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "COMMAND LIST lacks " + strings.Join(missing, " ")
	}
	return ""
}

// contractCommands are the standard commands of DESIGN §4, CLUSTER,
// READONLY and READWRITE aside.
var contractCommands = strings.Fields(`ping echo hello auth select quit reset client command info
	config dbsize flushdb flushall time get set setnx setex psetex getset getdel getex mget mset
	msetnx incr decr incrby decrby incrbyfloat append strlen getrange setrange del unlink exists
	touch type expire pexpire expireat pexpireat ttl pttl expiretime pexpiretime persist keys scan
	randomkey rename renamenx multi exec discard watch unwatch`)

// commandInfoSteps compares COMMAND INFO of each contract command (see commandInfo).
func commandInfoSteps() []step {
	steps := make([]step, len(contractCommands))
	for i, name := range contractCommands {
		steps[i] = do("COMMAND", "INFO", name).with(commandInfo)
	}
	return steps
}

// commandInfo compares COMMAND INFO replies entry by entry: name, arity,
// flags, key positions and ACL categories exactly, and each key spec by where
// it finds keys (begin_search, find_keys). Redis's command tips and key-spec
// access flags and notes (RW access update, "RW and ACCESS due to...") are
// documentation Sluice does not reproduce (docs/compatibility.md), so they
// are not compared. A container's subcommands are compared the same way, each
// one Sluice has against Redis's.
func commandInfo(a, b Reply) string {
	if len(a.Elems) != len(b.Elems) {
		return firstDiff(a, b)
	}
	for i := range a.Elems {
		if why := commandInfoEntry(a.Elems[i], b.Elems[i]); why != "" {
			return why
		}
	}
	return ""
}

func commandInfoEntry(ea, eb Reply) string {
	if len(ea.Elems) != 10 || len(eb.Elems) != 10 {
		if !ea.Equal(eb) {
			return fmt.Sprintf("want %s, got %s", ea, eb)
		}
		return ""
	}
	ra, rb := ea.Elems, eb.Elems
	for i := range 7 {
		if !ra[i].Equal(rb[i]) {
			return fmt.Sprintf("%s element %d: want %s, got %s", ra[0].Str, i, ra[i], rb[i])
		}
	}
	if len(ra[8].Elems) != len(rb[8].Elems) {
		return fmt.Sprintf("%s key specs: want %s, got %s", ra[0].Str, ra[8], rb[8])
	}
	for i := range ra[8].Elems {
		for _, field := range []string{"begin_search", "find_keys"} {
			wa, wb := specField(ra[8].Elems[i], field), specField(rb[8].Elems[i], field)
			if !wa.Equal(wb) {
				return fmt.Sprintf("%s key spec %d %s: want %s, got %s", ra[0].Str, i, field, wa, wb)
			}
		}
	}
	subs := map[string]Reply{}
	for _, s := range ra[9].Elems {
		if len(s.Elems) > 0 {
			subs[s.Elems[0].Str] = s
		}
	}
	for _, s := range rb[9].Elems {
		if len(s.Elems) == 0 {
			return "malformed subcommand " + s.String()
		}
		want, ok := subs[s.Elems[0].Str]
		if !ok && s.Elems[0].Str == "client|setinfo" {
			continue // Redis 7.2's, which DESIGN §4 asks for; 7.0 lacks it
		}
		if !ok {
			return "Redis has no subcommand " + s.Elems[0].Str
		}
		if why := commandInfoEntry(want, s); why != "" {
			return why
		}
	}
	return ""
}

// specField returns one field of a key spec map.
func specField(spec Reply, name string) Reply {
	pairs, _ := spec.Pairs()
	for _, p := range pairs {
		if p[0].Str == name {
			return p[1]
		}
	}
	return Reply{}
}

var (
	serverFields = []string{"redis_version", "redis_mode", "os", "arch_bits", "process_id", "run_id",
		"tcp_port", "uptime_in_seconds", "uptime_in_days", "executable", "config_file"}
	clientsFields = []string{"connected_clients", "blocked_clients", "maxclients"}
	memoryFields  = []string{"used_memory", "used_memory_human", "used_memory_peak", "maxmemory",
		"maxmemory_human", "maxmemory_policy"}
	statsFields = []string{"total_connections_received", "total_commands_processed",
		"instantaneous_ops_per_sec", "rejected_connections", "expired_keys", "evicted_keys",
		"keyspace_hits", "keyspace_misses", "total_error_replies"}
)

var serverScenarios = []scenario{
	{"command", []step{
		{args: []string{"COMMAND", "COUNT"}, sluice: commandCountMatchesList},
		{args: []string{"COMMAND", "LIST"}, sluice: commandListHasContract},
		cmd("COMMAND INFO get").with(commandInfo),
		cmd("COMMAND INFO GET set").with(commandInfo),
		cmd("COMMAND INFO nosuch"),
		cmd("COMMAND INFO get nosuch incr").with(commandInfo),
		cmd("COMMAND INFO client|id").with(commandInfo),
		cmd("COMMAND INFO").with(sameKind),
		cmd("COMMAND DOCS get").with(docsKeys),
		cmd("COMMAND DOCS nosuch"),
		cmd("COMMAND COUNT x"),
		cmd("COMMAND NOSUCH"),
		cmd("COMMAND LIST FILTERBY PATTERN xyz*"),
		cmd("COMMAND LIST FILTERBY FOO x"),
		cmd("COMMAND").with(sameKind),
	}},
	{"command-info-each", commandInfoSteps()},
	{"config", []step{
		cmd("CONFIG GET maxmemory"),
		cmd("CONFIG GET MAXMEMORY"),
		cmd("CONFIG GET nosuch"),
		cmd("CONFIG GET"),
		cmd("CONFIG SET maxmemory 100mb"),
		cmd("CONFIG GET maxmemory"),
		cmd("CONFIG SET maxmemory 1gb"),
		cmd("CONFIG GET maxmemory"),
		cmd("CONFIG SET maxmemory 0"),
		cmd("CONFIG GET maxmemory"),
		cmd("CONFIG SET maxmemory abc"),
		cmd("CONFIG SET maxmemory -1"),
		cmd("CONFIG SET nosuch x"),
		cmd("CONFIG SET maxmemory"),
		cmd("CONFIG SET"),
		cmd("CONFIG NOSUCH"),
		cmd("CONFIG"),
		do("HELLO", "3").with(mapKeys),
		cmd("CONFIG GET maxmemory"),
	}},
	{"info", []step{
		cmd("MSET a 1 b 2"),
		cmd("SET c 3 EX 100"),
		cmd("INFO").with(infoSection(slices.Concat(serverFields, clientsFields, memoryFields, statsFields)...)),
		cmd("INFO server").with(infoSection(serverFields...)),
		cmd("INFO SERVER").with(infoSection(serverFields...)),
		cmd("INFO clients").with(infoSection(clientsFields...)),
		cmd("INFO memory").with(infoSection(memoryFields...)),
		cmd("INFO stats").with(infoSection(statsFields...)),
		cmd("INFO replication").with(infoSection("role", "connected_slaves")),
		cmd("INFO cpu").with(infoSection("used_cpu_sys", "used_cpu_user")),
		cmd("INFO keyspace").with(infoSection()),
		cmd("INFO server keyspace").with(infoSection()),
		cmd("INFO errorstats").with(infoSection()),
		cmd("INFO default").with(infoSection()),
		cmd("INFO nosuchsection"),
		do("HELLO", "3").with(mapKeys),
		cmd("INFO keyspace").with(infoSection()),
	}},
	{"time", []step{
		cmd("TIME").with(timeReply),
		cmd("TIME x"),
	}},
}
