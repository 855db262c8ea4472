package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestACLLimiterOnlyUser(t *testing.T) {
	n, _ := newTestNode(t, Config{RequirePass: "admin-secret"})
	admin := connect(t, n)
	admin.expect("OK", "AUTH", "admin-secret")
	// The README's example: a user that may only call CL.THROTTLE on rl:* keys.
	admin.expect("OK", "ACL", "SETUSER", "limiter", "on", ">limiter-secret", "~rl:*", "+cl.throttle")

	lim := connect(t, n)
	lim.expect(Error(errNoAuth), "CL.THROTTLE", "rl:a", "10", "10", "1")
	lim.expect(Error(errWrongPass), "AUTH", "limiter", "wrong")
	lim.expect("OK", "AUTH", "limiter", "limiter-secret")
	if r, ok := lim.do("CL.THROTTLE", "rl:a", "10", "10", "1").([]any); !ok || r[0] != int64(0) {
		t.Fatalf("CL.THROTTLE on rl:a: %#v", r)
	}
	lim.expect(Error("NOPERM this user has no permissions to access one of the keys used as arguments"), "CL.THROTTLE", "other", "10", "10", "1")
	lim.expect(Error("NOPERM this user has no permissions to run the 'get' command"), "GET", "rl:a")
	lim.expect(Error("NOPERM this user has no permissions to run the 'config|get' command"), "CONFIG", "GET", "maxmemory")
	lim.expect(Error("NOPERM this user has no permissions to run the 'rl.take' command"), "RL.TAKE", "rl:a", "LIMIT", "1", "PERIOD", "1")

	admin.expect([]any{
		"user default on #" + hashPassword("admin-secret") + " ~* &* +@all",
		"user limiter on #" + hashPassword("limiter-secret") + " ~rl:* resetchannels -@all +cl.throttle",
	}, "ACL", "LIST")
	admin.expect(map[string]any{
		"flags": []any{"on"}, "passwords": []any{hashPassword("limiter-secret")}, "commands": "-@all +cl.throttle",
		"keys": "~rl:*", "channels": "", "selectors": []any{},
	}, "ACL", "GETUSER", "limiter")

	// A change applies to connected clients at once; deleting the user
	// disconnects them.
	admin.expect("OK", "ACL", "SETUSER", "limiter", "-cl.throttle")
	lim.expect(Error("NOPERM this user has no permissions to run the 'cl.throttle' command"), "CL.THROTTLE", "rl:a", "10", "10", "1")
	admin.expect(Error("ERR The 'default' user cannot be removed"), "ACL", "DELUSER", "default")
	admin.expect(int64(1), "ACL", "DELUSER", "limiter", "nobody")
	if !lim.conn.closed {
		t.Fatal("the deleted user's connection is still open")
	}
}

func TestACLRules(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	s := connect(t, n)
	s.expect("default", "ACL", "WHOAMI")
	s.expect([]any{"user default on nopass ~* &* +@all"}, "ACL", "LIST")
	for _, c := range []struct {
		rule string
		want string
	}{
		{"bogus", "ERR Error in ACL SETUSER modifier 'bogus': Syntax error"},
		{"+nosuch", "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"},
		{"-@nosuch", "ERR Error in ACL SETUSER modifier '-@nosuch': Unknown command or category name in ACL"},
		{"#abc", "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"},
		{"<nope", "ERR Error in ACL SETUSER modifier '<nope': The password you are trying to remove from the user does not exist"},
	} {
		s.expect(Error(c.want), "ACL", "SETUSER", "x", c.rule)
	}
	s.expect(nil, "ACL", "GETUSER", "x") // a failed SETUSER creates nothing
	s.expect(Error("ERR Error in ACL SETUSER modifier '~a': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"), "ACL", "SETUSER", "x", "allkeys", "~a")

	// Categories and subcommands.
	s.expect("OK", "ACL", "SETUSER", "reader", "on", "nopass", "~*", "+@read", "-strlen", "+client|id")
	r := connect(t, n)
	r.expect("OK", "AUTH", "reader", "anything")
	r.expect(nil, "GET", "k")
	r.expect(Error("NOPERM this user has no permissions to run the 'set' command"), "SET", "k", "v")
	r.expect(Error("NOPERM this user has no permissions to run the 'strlen' command"), "STRLEN", "k")
	if _, ok := r.do("CLIENT", "ID").(int64); !ok {
		t.Fatal("CLIENT ID was not allowed by +client|id")
	}
	r.expect(Error("NOPERM this user has no permissions to run the 'client|list' command"), "CLIENT", "LIST")
	// A disabled user cannot log in.
	s.expect("OK", "ACL", "SETUSER", "reader", "off")
	connect(t, n).expect(Error(errWrongPass), "AUTH", "reader", "anything")

	// CONFIG SET requirepass is the default user's password.
	s.expect("OK", "CONFIG", "SET", "requirepass", "pw")
	connect(t, n).expect(Error(errNoAuth), "GET", "k")
	connect(t, n).expect("OK", "AUTH", "default", "pw")
	s.expect("OK", "CONFIG", "SET", "requirepass", "")
	connect(t, n).expect(nil, "GET", "k")
	if !n.DefaultUserNoPass() {
		t.Fatal("the default user has a password after CONFIG SET requirepass \"\"")
	}
}

func TestACLFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.acl")
	file := "user default on nopass ~* &* +@all\nuser app on >app-pw ~app:* -@all +@read +@write\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	n, _ := newTestNode(t, Config{ACLFile: path})
	s := connect(t, n)
	app := connect(t, n)
	app.expect("OK", "AUTH", "app", "app-pw")
	app.expect("OK", "SET", "app:1", "v")
	app.expect(Error("NOPERM this user has no permissions to access one of the keys used as arguments"), "SET", "other", "v")

	s.expect("OK", "ACL", "SETUSER", "ops", "on", ">ops-pw", "+@admin")
	s.expect("OK", "ACL", "SAVE")
	saved, _ := os.ReadFile(path)
	if !strings.Contains(string(saved), "user ops on #"+hashPassword("ops-pw")) {
		t.Fatalf("ACL SAVE wrote:\n%s", saved)
	}
	// A file with an error changes nothing.
	if err := os.WriteFile(path, []byte("user app on +nosuch\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.do("ACL", "LOAD").(Error); !ok {
		t.Fatal("ACL LOAD of a bad file succeeded")
	}
	s.expect([]any{"app", "default", "ops"}, "ACL", "USERS")
	if _, err := New(Config{ACLFile: path}); err == nil {
		t.Fatal("New with a bad ACL file succeeded")
	}
}
