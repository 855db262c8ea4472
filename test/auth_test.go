package test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/sluicedb/sluice/node"
)

const testPassword = "s3cret"

// Scenarios for a server with requirepass, compared with Redis started with
// the same password.
var authScenarios = []scenario{
	{"before-auth", []step{
		cmd("PING"),
		cmd("GET k"),
		cmd("SET k v"),
		cmd("CLIENT ID"),
		cmd("CLIENT SETNAME me"),
		cmd("SELECT 0"),
		cmd("ECHO x"),
		cmd("DBSIZE"),
		cmd("MULTI"),
		cmd("EXEC"),
		cmd("WATCH k"),
		cmd("COMMAND COUNT"),
		cmd("CONFIG GET maxmemory"),
		cmd("NOSUCH x"),
		cmd("GET"),
		cmd("CLIENT NOSUCH"),
		cmd("HELLO"),
		cmd("HELLO 2"),
		cmd("HELLO 3"),
		cmd("HELLO 4"),
		cmd("AUTH"),
		cmd("AUTH wrong"),
		cmd("AUTH default wrong"),
		cmd("AUTH nosuchuser " + testPassword),
		cmd("AUTH a b c"),
		cmd("GET k"),
		cmd("AUTH " + testPassword),
		cmd("GET k"),
		cmd("PING"),
		cmd("AUTH wrong"),
		cmd("PING"),
		on(1, "PING"),
	}},
	{"auth-with-user", []step{
		cmd("AUTH default " + testPassword),
		cmd("SET k v"),
		cmd("GET k"),
	}},
	{"hello-auth", []step{
		cmd("HELLO 3 AUTH default wrong"),
		cmd("HELLO 3 AUTH nosuchuser " + testPassword),
		cmd("PING"),
		cmd("HELLO 3 AUTH default " + testPassword).with(mapKeys),
		cmd("GET k"),
		cmd("HELLO 2 AUTH default " + testPassword + " SETNAME named").with(mapKeys),
		cmd("CLIENT GETNAME"),
	}},
	{"reset-deauthenticates", []step{
		cmd("AUTH " + testPassword),
		cmd("PING"),
		cmd("RESET"),
		cmd("PING"),
	}},
	{"reset-and-quit-before-auth", []step{
		cmd("RESET"),
		cmd("QUIT"),
		cmd("PING"),
	}},
	{"unauthenticated-protocol-limits", []step{
		custom("multibulk of 11 arguments before AUTH", raw("*11\r\n", 2)),
		custom("bulk of 16385 bytes before AUTH", raw("*1\r\n$16385\r\n", 2)),
		custom("multibulk of 10 arguments before AUTH", raw("*10\r\n"+strings.Repeat("$1\r\nx\r\n", 10), 1)),
	}},
	{"auth-inside-multi", []step{
		cmd("AUTH " + testPassword),
		cmd("MULTI"),
		cmd("AUTH wrong"),
		cmd("SET k v"),
		cmd("EXEC"),
		cmd("GET k"),
	}},
}

func TestDifferentialAuth(t *testing.T) {
	t.Parallel()
	runGroups(t, startRedis(t, "--requirepass", testPassword),
		startSluice(t, node.Config{RequirePass: testPassword}), testPassword,
		[]scenarioGroup{{"requirepass", authScenarios}})
}

// TestRequirePass checks Sluice's exact protection replies, and go-redis's
// Password option.
func TestRequirePass(t *testing.T) {
	t.Parallel()
	addr := startSluice(t, node.Config{RequirePass: testPassword})
	c := dialRaw(t, addr)
	for _, tc := range []struct {
		args []string
		want Reply
	}{
		{[]string{"GET", "k"}, errReply("NOAUTH Authentication required.")},
		{[]string{"PING"}, errReply("NOAUTH Authentication required.")},
		{[]string{"AUTH", "wrong"}, errReply("WRONGPASS invalid username-password pair or user is disabled.")},
		{[]string{"AUTH", testPassword}, simple("OK")},
		{[]string{"PING"}, simple("PONG")},
	} {
		if got := c.Do(tc.args...); !got.Equal(tc.want) {
			t.Errorf("%s: got %s, want %s", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	ctx := testContext(t)
	ok := newGoRedis(t, &redis.Options{Addr: addr, Password: testPassword})
	if err := ok.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Errorf("go-redis with Password: SET: %v", err)
	}
	if got, err := ok.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("go-redis with Password: GET = %q, %v", got, err)
	}
	none := newGoRedis(t, &redis.Options{Addr: addr, MaxRetries: -1})
	if err := none.Ping(ctx).Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		t.Errorf("go-redis without a password: PING err = %v, want NOAUTH", err)
	}
	wrong := newGoRedis(t, &redis.Options{Addr: addr, Password: "wrong", MaxRetries: -1})
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("go-redis with a wrong password: PING err = %v, want WRONGPASS", err)
	}
}
