package test

import (
	"fmt"
	"strings"
)

// Scenarios for connection commands: PING, ECHO, HELLO, AUTH without a
// password, SELECT, CLIENT, QUIT, RESET, and the RESP input forms.

// clientInfoDeterministic are the CLIENT INFO fields whose values must match
// between two fresh connections that ran the same commands.
var clientInfoDeterministic = []string{"name", "db", "sub", "psub", "multi", "flags", "cmd", "user", "redir", "resp"}

// parseClientLine splits one CLIENT INFO/LIST line into its fields in order.
func parseClientLine(line string) (keys []string, vals map[string]string) {
	vals = map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		keys = append(keys, k)
		vals[k] = v
	}
	return keys, vals
}

// clientInfo compares CLIENT INFO replies: one line ending in a newline,
// every field Redis 7.0 has (Sluice may add 7.2's lib-name and lib-ver), and
// equal values for the fields that do not depend on timing or addresses.
func clientInfo(a, b Reply) string {
	if a.Kind != b.Kind || (a.Kind != '$' && a.Kind != '=') {
		return "want a bulk string like Redis"
	}
	if !strings.HasSuffix(b.Str, "\n") || strings.Count(b.Str, "\n") != 1 {
		return "want one line ending in a newline"
	}
	rkeys, rvals := parseClientLine(a.Str)
	_, svals := parseClientLine(b.Str)
	var missing []string
	for _, k := range rkeys {
		if _, ok := svals[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("fields missing: %s", strings.Join(missing, " "))
	}
	for _, k := range clientInfoDeterministic {
		if rvals[k] != svals[k] {
			return fmt.Sprintf("field %s: want %q, got %q", k, rvals[k], svals[k])
		}
	}
	return ""
}

// clientList compares CLIENT LIST replies by shape: lines ending in a
// newline, each with every field of Redis's first line. The number of
// clients is not compared (a closed connection may linger a moment).
func clientList(a, b Reply) string {
	if a.Kind != b.Kind || a.Kind != '$' {
		return "want a bulk string like Redis"
	}
	if !strings.HasSuffix(b.Str, "\n") {
		return "want lines ending in a newline"
	}
	rkeys, _ := parseClientLine(strings.SplitN(a.Str, "\n", 2)[0])
	for _, line := range strings.Split(strings.TrimSuffix(b.Str, "\n"), "\n") {
		_, svals := parseClientLine(line)
		for _, k := range rkeys {
			if _, ok := svals[k]; !ok {
				return fmt.Sprintf("field %s missing in %q", k, line)
			}
		}
	}
	return ""
}

// killOther has connection 0 kill connection 1 by id, and returns the kill's
// reply and what connection 1 then sees.
func killOther(conn func(int) *rawConn) Reply {
	id := conn(1).Do("CLIENT", "ID")
	kill := conn(0).Do("CLIENT", "KILL", "ID", id.Str)
	return Reply{Kind: '*', Elems: []Reply{kill, conn(1).Do("PING")}}
}

// killSelf has connection 0 kill itself by id, with and without SKIPME.
func killSelf(conn func(int) *rawConn) Reply {
	id := conn(0).Do("CLIENT", "ID")
	skipped := conn(0).Do("CLIENT", "KILL", "ID", id.Str)
	kill := conn(0).Do("CLIENT", "KILL", "ID", id.Str, "SKIPME", "no")
	return Reply{Kind: '*', Elems: []Reply{skipped, kill, conn(0).Do("PING")}}
}

// listOwnID runs CLIENT LIST ID with connection 0's own id and returns the
// number of lines.
func listOwnID(conn func(int) *rawConn) Reply {
	id := conn(0).Do("CLIENT", "ID")
	r := conn(0).Do("CLIENT", "LIST", "ID", id.Str, "999999")
	if r.Kind != '$' {
		return r
	}
	return integer(int64(strings.Count(r.Str, "\n")))
}

// raw sends bytes as they are on connection 0 and returns the replies to
// read, or fewer when the connection closes.
func raw(input string, replies int) func(conn func(int) *rawConn) Reply {
	return func(conn func(int) *rawConn) Reply {
		c := conn(0)
		out := Reply{Kind: '*'}
		r := c.DoRaw([]byte(input))
		out.Elems = append(out.Elems, r)
		for len(out.Elems) < replies && r.Kind != kindClosed {
			r = c.Read()
			out.Elems = append(out.Elems, r)
		}
		return out
	}
}

func custom(label string, fn func(conn func(int) *rawConn) Reply) step {
	return step{args: []string{label}, fn: fn}
}

var connectionScenarios = []scenario{
	{"ping-echo", []step{
		cmd("PING"),
		cmd("ping"),
		cmd("PING hello"),
		do("PING", ""),
		cmd("PING a b"),
		cmd("ECHO hi"),
		do("ECHO", ""),
		do("ECHO", binValue),
		cmd("ECHO"),
		cmd("ECHO a b"),
	}},
	{"hello", []step{
		cmd("HELLO").with(mapKeys),
		cmd("HELLO 2").with(mapKeys),
		cmd("GET missing"),
		cmd("HELLO 3").with(mapKeys),
		cmd("PING"),
		cmd("GET missing"),
		cmd("MGET missing"),
		cmd("SET k v"),
		cmd("GET k"),
		cmd("INCR n"),
		cmd("INCRBYFLOAT f 1.5"),
		cmd("EXISTS k"),
		cmd("KEYS k"),
		cmd("HELLO").with(mapKeys),
		cmd("HELLO 2").with(mapKeys),
		cmd("GET missing"),
	}},
	{"hello-errors", []step{
		cmd("HELLO 4"),
		cmd("HELLO 1"),
		cmd("HELLO 0"),
		cmd("HELLO abc"),
		cmd("HELLO -1"),
		cmd("HELLO 3 FOO"),
		cmd("HELLO 3 AUTH"),
		cmd("HELLO 3 AUTH default"),
		cmd("HELLO 3 SETNAME"),
		cmd("HELLO 3 SETNAME a b"),
		do("HELLO", "3", "SETNAME", "bad name"),
		cmd("GET missing"),
		cmd("CLIENT GETNAME"),
	}},
	{"hello-setname-auth", []step{
		cmd("HELLO 3 SETNAME conn1").with(mapKeys),
		cmd("CLIENT GETNAME"),
		cmd("HELLO 2 AUTH default anything").with(mapKeys),
		cmd("HELLO 2 AUTH nosuchuser x"),
		cmd("HELLO 2 AUTH default x SETNAME conn2").with(mapKeys),
		cmd("CLIENT GETNAME"),
		cmd("HELLO 3 setname conn3 auth default x").with(mapKeys),
		cmd("CLIENT GETNAME"),
	}},
	{"auth-without-password", []step{
		cmd("AUTH x"),
		cmd("AUTH default x"),
		cmd("AUTH nosuchuser x"),
		cmd("AUTH"),
		cmd("AUTH a b c"),
		cmd("PING"),
	}},
	{"select", []step{
		cmd("SELECT 0"),
		cmd("SET k v"),
		cmd("SELECT 0"),
		cmd("GET k"),
		cmd("SELECT abc"),
		cmd("SELECT 1.5"),
		cmd("SELECT"),
		cmd("SELECT 0 1"),
		sluiceOnly(errReply("ERR SELECT is not allowed in cluster mode"), "SELECT", "1"),
		sluiceOnly(errReply("ERR SELECT is not allowed in cluster mode"), "SELECT", "15"),
		sluiceOnly(errReply("ERR SELECT is not allowed in cluster mode"), "SELECT", "16"),
		sluiceOnly(errReply("ERR SELECT is not allowed in cluster mode"), "SELECT", "-1"),
		cmd("GET k"),
	}},
	{"client-name", []step{
		cmd("CLIENT GETNAME"),
		cmd("CLIENT SETNAME foo"),
		cmd("CLIENT GETNAME"),
		do("CLIENT", "SETNAME", "a b"),
		do("CLIENT", "SETNAME", "a\nb"),
		do("CLIENT", "SETNAME", "a\x01"),
		do("CLIENT", "SETNAME", "é"),
		cmd("CLIENT GETNAME"),
		do("CLIENT", "SETNAME", ""),
		cmd("CLIENT GETNAME"),
		cmd("client setname Bar-1.2_x"),
		cmd("CLIENT GETNAME"),
		cmd("CLIENT SETNAME"),
		cmd("CLIENT SETNAME a b"),
		cmd("CLIENT GETNAME x"),
	}},
	{"client-setinfo", []step{
		sluiceOnly(simple("OK"), "CLIENT", "SETINFO", "LIB-NAME", "sluice-test"),
		sluiceOnly(simple("OK"), "CLIENT", "SETINFO", "lib-ver", "1.2.3"),
		sluiceOnly(errReply("ERR Unrecognized option 'FOO'"), "CLIENT", "SETINFO", "FOO", "x"),
		sluiceOnly(errReply("ERR LIB-NAME cannot contain spaces, newlines or special characters."),
			"CLIENT", "SETINFO", "LIB-NAME", "a b"),
		sluiceOnly(errReply("ERR wrong number of arguments for 'client|setinfo' command"),
			"CLIENT", "SETINFO", "LIB-NAME"),
		{args: []string{"CLIENT", "INFO"}, sluice: func(c *rawConn) string {
			r := c.Do("CLIENT", "INFO")
			_, vals := parseClientLine(r.Str)
			if vals["lib-name"] != "sluice-test" || vals["lib-ver"] != "1.2.3" {
				return fmt.Sprintf("want lib-name=sluice-test lib-ver=1.2.3 in %s", r)
			}
			return ""
		}},
	}},
	{"client-id-info-list", []step{
		cmd("CLIENT ID").with(sameKind),
		cmd("CLIENT ID x"),
		cmd("CLIENT INFO").with(clientInfo),
		cmd("CLIENT SETNAME me"),
		cmd("GET k"),
		cmd("CLIENT INFO").with(clientInfo),
		cmd("CLIENT INFO x"),
		cmd("MULTI"),
		cmd("SET a 1"),
		cmd("DISCARD"),
		cmd("CLIENT LIST").with(clientList),
		cmd("CLIENT LIST TYPE normal").with(clientList),
		cmd("CLIENT LIST TYPE nosuch"),
		cmd("CLIENT LIST FOO"),
		cmd("CLIENT LIST ID abc"),
		cmd("CLIENT LIST ID 0"),
		custom("CLIENT LIST ID <own id> 999999", listOwnID),
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT INFO").with(clientInfo),
	}},
	{"client-kill", []step{
		cmd("CLIENT KILL ID 999999"),
		cmd("CLIENT KILL 1.2.3.4:5"),
		cmd("CLIENT KILL ID abc"),
		cmd("CLIENT KILL ID 0"),
		cmd("CLIENT KILL ID -1"),
		cmd("CLIENT KILL FOO bar"),
		cmd("CLIENT KILL ID"),
		cmd("CLIENT KILL"),
		cmd("CLIENT KILL ADDR 1.2.3.4:5"),
		cmd("CLIENT KILL SKIPME maybe"),
		on(1, "PING"),
		custom("CLIENT KILL ID <id of connection 1>, then PING on it", killOther),
		cmd("PING"),
		custom("CLIENT KILL ID <own id> [SKIPME no], then PING", killSelf),
		cmd("PING"),
	}},
	{"client-subcommands", []step{
		cmd("CLIENT"),
		cmd("CLIENT NOSUCH"),
		cmd("client nosuch a b"),
		do("CLIENT", strings.Repeat("s", 200)),
		cmd("CLIENT HELP").with(sameKind),
	}},
	{"client-tracking", []step{
		cmd("CLIENT CACHING YES"),
		cmd("CLIENT TRACKING ON"),
		cmd("CLIENT CACHING YES"),
		cmd("CLIENT TRACKING OFF"),
		cmd("CLIENT TRACKING ON OPTIN"),
		cmd("CLIENT CACHING YES"),
		cmd("CLIENT CACHING NO"),
		cmd("CLIENT CACHING MAYBE"),
		cmd("CLIENT TRACKING OFF"),
		cmd("CLIENT TRACKING ON OPTOUT"),
		cmd("CLIENT CACHING NO"),
		cmd("CLIENT CACHING YES"),
		cmd("CLIENT TRACKING OFF"),
		cmd("CLIENT TRACKING ON OPTIN OPTOUT"),
		cmd("CLIENT TRACKING ON BCAST OPTIN"),
		cmd("CLIENT TRACKING ON FOO"),
		cmd("CLIENT TRACKING MAYBE"),
		cmd("CLIENT TRACKING"),
		cmd("CLIENT CACHING"),
		cmd("CLIENT TRACKING OFF"),
		do("HELLO", "3").with(mapKeys),
		cmd("CLIENT TRACKING ON OPTIN"),
		cmd("CLIENT CACHING YES"),
		cmd("GET k"),
		cmd("CLIENT TRACKING OFF"),
	}},
	{"quit", []step{
		cmd("SET a 1"),
		cmd("QUIT"),
		cmd("PING"),
		cmd("GET a"),
		cmd("QUIT x"),
		cmd("PING"),
	}},
	{"quit-inside-multi", []step{
		cmd("MULTI"),
		cmd("SET a 1"),
		cmd("QUIT"),
		cmd("GET a"),
	}},
	{"reset", []step{
		cmd("CLIENT SETNAME foo"),
		do("HELLO", "3").with(mapKeys),
		cmd("SET a 1"),
		cmd("WATCH a"),
		cmd("MULTI"),
		cmd("SET a 2"),
		cmd("RESET"),
		cmd("CLIENT GETNAME"),
		cmd("GET missing"),
		cmd("GET a"),
		cmd("EXEC"),
		cmd("WATCH a"),
		cmd("RESET"),
		on(1, "SET", "a", "3"),
		cmd("MULTI"),
		cmd("SET a 4"),
		cmd("EXEC"),
		cmd("CLIENT TRACKING ON"),
		cmd("RESET"),
		cmd("CLIENT CACHING YES"),
		cmd("RESET x"),
	}},
	{"inline-and-raw-input", []step{
		custom("inline PING", raw("PING\r\n", 1)),
		custom("inline SET/GET with quotes", raw("SET k \"a b\\x41\"\r\nGET k\r\n", 2)),
		custom("inline with extra spaces", raw("  ECHO   hi  \r\n", 1)),
		custom("inline with LF only", raw("PING\n", 1)),
		custom("empty lines then PING", raw("\r\n\r\nPING\r\n", 1)),
		custom("pipelined array commands", raw("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", 2)),
		custom("inline unbalanced quotes", raw("SET k \"abc\r\n", 2)),
		custom("invalid bulk length", raw("*1\r\n$abc\r\n", 2)),
		custom("invalid multibulk length", raw("*abc\r\n", 2)),
		custom("bulk length over proto-max-bulk-len", raw("*1\r\n$536870913\r\n", 2)),
		custom("negative multibulk length", raw("*-5\r\nPING\r\n", 1)),
		custom("expected $", raw("*1\r\n+PING\r\n", 2)),
		custom("multibulk length over INT_MAX", raw("*2147483648\r\n", 2)),
		custom("100 pipelined INCRs in one write", raw(strings.Repeat("*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", 100), 100)),
		custom("inline command after a multibulk", raw("*1\r\n$4\r\nPING\r\nECHO x\r\n", 2)),
	}},
}
