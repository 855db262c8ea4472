package node

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/store"
)

// fakeClock is a store.Clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() int64              { return c.ns.Load() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) UnixMilli() int64        { return c.ns.Load() / 1e6 }

func newTestNode(t testing.TB, cfg Config) (*Node, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n, clock
}

// session is one client connection driven directly, with a fake connection
// that records pushes.
type session struct {
	t    *testing.T
	c    *Client
	conn *fakeConn
}

type fakeConn struct {
	mu     sync.Mutex
	pushes []any
	closed bool
}

func (f *fakeConn) Send(fn func(Writer)) {
	var w valueWriter
	w.proto = 3
	fn(&w)
	f.mu.Lock()
	f.pushes = append(f.pushes, w.result)
	f.mu.Unlock()
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

func (f *fakeConn) taken() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pushes
	f.pushes = nil
	return p
}

func connect(t *testing.T, n *Node) *session {
	t.Helper()
	conn := &fakeConn{}
	c, err := n.Connect(conn, "127.0.0.1:5000", "127.0.0.1:6379")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Disconnect)
	return &session{t: t, c: c, conn: conn}
}

// do runs a command and returns its reply as Go values (errors as Error).
func (s *session) do(args ...any) any {
	s.t.Helper()
	argv := make([][]byte, len(args))
	for i, a := range args {
		b, err := toArg(a)
		if err != nil {
			s.t.Fatal(err)
		}
		argv[i] = b
	}
	var w valueWriter
	w.proto = s.c.proto
	s.c.Exec(&w, argv)
	return w.result
}

// norm turns []byte into string throughout, for comparisons.
func norm(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = norm(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = norm(e)
		}
		return out
	}
	return v
}

func (s *session) expect(want any, args ...any) {
	s.t.Helper()
	if got := norm(s.do(args...)); !reflect.DeepEqual(got, want) {
		s.t.Errorf("%v: got %#v, want %#v", args, got, want)
	}
}

func TestStringCommands(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	s := connect(t, n)
	steps := []struct {
		args []any
		want any
	}{
		{[]any{"GET", "k"}, nil},
		{[]any{"SET", "k", "v"}, "OK"},
		{[]any{"get", "k"}, "v"},
		{[]any{"SET", "k", "w", "NX"}, nil},
		{[]any{"SET", "k", "w", "XX", "GET"}, "v"},
		{[]any{"SET", "k", "x", "NX", "XX"}, Error(errSyntax)},
		{[]any{"SET", "k", "x", "EX", "0"}, Error("ERR invalid expire time in 'set' command")},
		{[]any{"SET", "k", "x", "EX", "abc"}, Error(errNotInt)},
		{[]any{"SET", "k", "x", "KEEPTTL", "EX", "1"}, Error(errSyntax)},
		{[]any{"APPEND", "k", "yz"}, int64(3)},
		{[]any{"GET", "k"}, "wyz"},
		{[]any{"STRLEN", "k"}, int64(3)},
		{[]any{"GETRANGE", "k", "0", "-2"}, "wy"},
		{[]any{"GETRANGE", "k", "-1", "-5"}, ""},
		{[]any{"SETRANGE", "k", "5", "!"}, int64(6)},
		{[]any{"GET", "k"}, "wyz\x00\x00!"},
		{[]any{"SETRANGE", "k", "-1", "x"}, Error(errOffsetRange)},
		{[]any{"SETRANGE", "missing", "3", ""}, int64(0)},
		{[]any{"EXISTS", "missing"}, int64(0)},
		{[]any{"INCR", "n"}, int64(1)},
		{[]any{"INCRBY", "n", "41"}, int64(42)},
		{[]any{"DECRBY", "n", "-9223372036854775808"}, Error("ERR decrement would overflow")},
		{[]any{"SET", "n", "9223372036854775807"}, "OK"},
		{[]any{"INCR", "n"}, Error(errOverflow)},
		{[]any{"INCR", "k"}, Error(errNotInt)},
		{[]any{"SET", "f", "10.5"}, "OK"},
		{[]any{"INCRBYFLOAT", "f", "0.1"}, "10.6"},
		{[]any{"INCRBYFLOAT", "f", "+inf"}, Error(errIncrFloatNaN)},
		{[]any{"SET", "z", "0"}, "OK"},
		{[]any{"INCRBYFLOAT", "z", "0.5"}, "0.5"},
		{[]any{"INCRBYFLOAT", "z", "-0.5"}, "0"},
		{[]any{"MSET", "a", "1", "b", "2"}, "OK"},
		{[]any{"MSET", "a", "1", "b"}, Error("ERR wrong number of arguments for 'mset' command")},
		{[]any{"MGET", "a", "b", "nope"}, []any{"1", "2", nil}},
		{[]any{"MSETNX", "a", "9", "c", "3"}, int64(0)},
		{[]any{"MSETNX", "c", "3", "d", "4"}, int64(1)},
		{[]any{"GETSET", "a", "one"}, "1"},
		{[]any{"GETDEL", "a"}, "one"},
		{[]any{"GETDEL", "a"}, nil},
		{[]any{"SETNX", "a", "x"}, int64(1)},
		{[]any{"SETNX", "a", "y"}, int64(0)},
		{[]any{"DEL", "a", "b", "nope"}, int64(2)},
		{[]any{"GET"}, Error("ERR wrong number of arguments for 'get' command")},
		{[]any{"NOPE", "x", "y"}, Error("ERR unknown command 'NOPE', with args beginning with: 'x' 'y' ")},
		{[]any{"CLIENT", "NOPE"}, Error("ERR unknown subcommand 'NOPE'. Try CLIENT HELP.")},
		{[]any{"SELECT", "0"}, "OK"},
		{[]any{"SELECT", "1"}, Error(errSelectCluster)},
		{[]any{"RENAME", "nope", "x"}, Error(errNoSuchKey)},
		{[]any{"RENAME", "c", "c2"}, "OK"},
		{[]any{"RENAMENX", "c2", "d"}, int64(0)},
		{[]any{"TYPE", "c2"}, "string"},
		{[]any{"TYPE", "c"}, "none"},
	}
	for _, st := range steps {
		s.expect(st.want, st.args...)
	}
}

func TestExpiryFollowsTheClock(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	s := connect(t, n)
	s.expect("OK", "SET", "k", "v", "PX", "1500")
	s.expect(int64(2), "TTL", "k") // 1.5 s rounds to 2, as in Redis
	s.expect(int64(1500), "PTTL", "k")
	s.expect(clock.UnixMilli()+1500, "PEXPIRETIME", "k")
	clock.Advance(1500 * time.Millisecond)
	s.expect("v", "GET", "k") // at its expiry time a key still exists, as in Redis
	s.expect(int64(0), "PTTL", "k")
	clock.Advance(time.Millisecond)
	s.expect(nil, "GET", "k")
	s.expect(int64(-2), "TTL", "k")

	s.expect("OK", "SET", "p", "v")
	s.expect(int64(-1), "TTL", "p")
	s.expect(int64(0), "EXPIRE", "p", "10", "XX")
	s.expect(int64(1), "EXPIRE", "p", "10", "NX")
	s.expect(int64(0), "EXPIRE", "p", "5", "GT")
	s.expect(int64(1), "EXPIRE", "p", "5", "LT")
	s.expect(Error("ERR NX and XX, GT or LT options at the same time are not compatible"), "EXPIRE", "p", "5", "NX", "GT")
	s.expect(int64(1), "PERSIST", "p")
	s.expect(int64(1), "EXPIRE", "p", "-1")
	s.expect(int64(0), "EXISTS", "p")

	s.expect("OK", "SET", "g", "v")
	s.expect("v", "GETEX", "g", "EX", "10")
	s.expect(int64(10), "TTL", "g")
	s.expect("v", "GETEX", "g", "PERSIST")
	s.expect(int64(-1), "TTL", "g")
	s.expect("OK", "SET", "g", "v", "EX", "100")
	s.expect("OK", "SET", "g", "w", "KEEPTTL")
	s.expect(int64(100), "TTL", "g")
}

func TestMultiExec(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	s := connect(t, n)
	s.expect("OK", "MULTI")
	s.expect("QUEUED", "SET", "a", "1")
	s.expect("QUEUED", "INCR", "a")
	s.expect("QUEUED", "APPEND", "a", "x")
	s.expect("QUEUED", "INCR", "a")
	s.expect([]any{"OK", int64(2), int64(2), Error(errNotInt)}, "EXEC")

	s.expect("OK", "MULTI")
	s.expect(Error("ERR unknown command 'NOPE', with args beginning with: "), "NOPE")
	s.expect("QUEUED", "SET", "a", "1")
	s.expect(Error(errExecAbort), "EXEC")
	s.expect("2x", "GET", "a")
	s.expect(Error(errExecNoMulti), "EXEC")
	s.expect(Error(errDiscardNoMult), "DISCARD")

	s.expect("OK", "MULTI")
	s.expect(Error(errNestedMulti), "MULTI")
	s.expect(Error(errWatchInMulti), "WATCH", "a")
	s.expect("QUEUED", "FLUSHALL")
	s.expect("QUEUED", "DBSIZE")
	s.expect([]any{"OK", int64(0)}, "EXEC")
}

func TestWatchAbortsOnChange(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	a, b := connect(t, n), connect(t, n)
	a.expect("OK", "SET", "k", "1")
	a.expect("OK", "WATCH", "k")
	b.expect("OK", "SET", "k", "2")
	a.expect("OK", "MULTI")
	a.expect("QUEUED", "SET", "k", "3")
	a.expect(nil, "EXEC")
	a.expect("2", "GET", "k")

	// Unchanged keys let EXEC through; EXEC unwatches.
	a.expect("OK", "WATCH", "k", "missing")
	a.expect("OK", "MULTI")
	a.expect("QUEUED", "SET", "k", "4")
	a.expect([]any{"OK"}, "EXEC")

	// Expiry counts as a change.
	a.expect("OK", "SET", "e", "v", "PX", "10")
	a.expect("OK", "WATCH", "e")
	clock.Advance(20 * time.Millisecond)
	a.expect("OK", "MULTI")
	a.expect("QUEUED", "SET", "e", "w")
	a.expect(nil, "EXEC")
}

func TestTrackingInvalidates(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	reader, writer := connect(t, n), connect(t, n)
	reader.do("HELLO", "3")
	reader.expect("OK", "CLIENT", "TRACKING", "ON")
	reader.expect(nil, "GET", "k")
	writer.expect("OK", "SET", "k", "v")
	want := []any{[]any{"invalidate", []any{"k"}}}
	if got := norm(reader.conn.taken()); !reflect.DeepEqual(got, want) {
		t.Fatalf("pushes after a write: got %#v, want %#v", got, want)
	}
	// Forgotten until read again.
	writer.expect("OK", "SET", "k", "w")
	if got := reader.conn.taken(); len(got) != 0 {
		t.Fatalf("untracked key pushed: %#v", got)
	}
	// OPTIN tracks only after CLIENT CACHING yes.
	reader.expect("OK", "CLIENT", "TRACKING", "OFF")
	reader.expect("OK", "CLIENT", "TRACKING", "ON", "OPTIN")
	reader.expect("w", "GET", "k")
	writer.expect("OK", "SET", "k", "x")
	if got := reader.conn.taken(); len(got) != 0 {
		t.Fatalf("optin without CACHING yes pushed: %#v", got)
	}
	reader.expect("OK", "CLIENT", "CACHING", "YES")
	reader.expect("x", "GET", "k")
	writer.expect(int64(1), "DEL", "k")
	if got := norm(reader.conn.taken()); !reflect.DeepEqual(got, want) {
		t.Fatalf("optin pushes: got %#v, want %#v", got, want)
	}
	writer.expect("OK", "FLUSHALL")
	if got := norm(reader.conn.taken()); !reflect.DeepEqual(got, []any{[]any{"invalidate", nil}}) {
		t.Fatalf("flush pushes: got %#v", got)
	}
}

func TestClientReplyModes(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	s := connect(t, n)
	s.expect(nil, "CLIENT", "REPLY", "OFF")
	s.expect(nil, "PING")
	s.expect("OK", "CLIENT", "REPLY", "ON")
	s.expect(nil, "CLIENT", "REPLY", "SKIP")
	s.expect(nil, "PING")
	s.expect("PONG", "PING")
}

func TestAuth(t *testing.T) {
	n, _ := newTestNode(t, Config{RequirePass: "s3cret"})
	s := connect(t, n)
	s.expect(Error(errNoAuth), "GET", "k")
	s.expect(Error(errWrongPass), "AUTH", "wrong")
	s.expect("OK", "AUTH", "s3cret")
	s.expect(nil, "GET", "k")
	s.expect(map[string]any{"requirepass": "********"}, "CONFIG", "GET", "requirepass")
}

func TestClientListAndKill(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	a, b := connect(t, n), connect(t, n)
	a.expect("OK", "CLIENT", "SETNAME", "alpha")
	a.expect(Error("ERR Client names cannot contain spaces, newlines or special characters."), "CLIENT", "SETNAME", "a b")
	list := norm(a.do("CLIENT", "LIST")).(string)
	for _, want := range []string{"name=alpha", "qbuf=26", "cmd=client|list", fmt.Sprintf("id=%d ", b.c.id)} {
		if !strings.Contains(list, want) {
			t.Errorf("CLIENT LIST lacks %q:\n%s", want, list)
		}
	}
	a.expect(Error("ERR client-id should be greater than 0"), "CLIENT", "KILL", "ID", "0")
	a.expect(int64(1), "CLIENT", "KILL", "ID", b.c.id)
	if !b.conn.closed {
		t.Fatal("killed client's connection was not closed")
	}
}

func TestDo(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	ctx := context.Background()
	if v, err := n.Do(ctx, "SET", "k", 42); err != nil || v != "OK" {
		t.Fatalf("SET: %v %v", v, err)
	}
	if v, err := n.Do(ctx, "INCR", "k"); err != nil || v != int64(43) {
		t.Fatalf("INCR: %v %v", v, err)
	}
	if _, err := n.Do(ctx, "INCR"); err == nil || err.Error() != "ERR wrong number of arguments for 'incr' command" {
		t.Fatalf("arity error: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Do(cancelled, "PING"); err != context.Canceled {
		t.Fatalf("cancelled Do: %v", err)
	}
}

func TestCommandTable(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	s := connect(t, n)
	// COMMAND COUNT counts commands; COMMAND LIST names subcommands too, as
	// "client|id", like Redis 7.
	count := s.do("COMMAND", "COUNT").(int64)
	top := 0
	for _, name := range norm(s.do("COMMAND", "LIST")).([]any) {
		if !strings.Contains(name.(string), "|") {
			top++
		}
	}
	if int(count) != top || count < 60 {
		t.Fatalf("COMMAND COUNT %d, top-level names in COMMAND LIST %d", count, top)
	}
	info := norm(s.do("COMMAND", "INFO", "mset")).([]any)[0].([]any)
	if info[0] != "mset" || info[1] != int64(-3) || info[3] != int64(1) || info[4] != int64(-1) || info[5] != int64(2) {
		t.Fatalf("COMMAND INFO mset: %#v", info[:6])
	}
	s.expect([]any{"a", "c"}, "COMMAND", "GETKEYS", "MSET", "a", "b", "c", "d")
	for name, cmd := range commands {
		if cmd.Handler == nil && cmd.sub == nil {
			t.Errorf("%s has no handler", name)
		}
		if cmd.Summary == "" || cmd.Since == "" || cmd.Group == "" {
			t.Errorf("%s lacks docs", name)
		}
	}
}

// FuzzCommands runs random argument vectors built from real command names and
// plausible arguments: the node must never panic, and DBSIZE must agree with
// a full SCAN afterwards.
func FuzzCommands(f *testing.F) {
	f.Add([]byte("SET k v EX 10\nGET k\nAPPEND k x\nGETRANGE k -1 0"))
	f.Add([]byte("MULTI\nINCR n\nEXEC\nWATCH n\nRENAME n m"))
	f.Add([]byte("SETRANGE k 100 x\nEXPIRE k 1 GT\nSCAN 0 MATCH * COUNT 1 TYPE string"))
	n, _ := newTestNode(f, Config{MaxMemory: 1 << 20})
	f.Fuzz(func(t *testing.T, script []byte) {
		c := n.newClient(nil, "fuzz", "fuzz")
		var w valueWriter
		for _, line := range splitLines(script) {
			args := splitWords(line)
			if len(args) == 0 {
				continue
			}
			if eqFold(args[0], "client") || eqFold(args[0], "config") || eqFold(args[0], "quit") {
				continue // connection and server settings are not the subject here
			}
			w = valueWriter{proto: c.proto}
			c.Exec(&w, args)
		}
		var keys int64
		var cursor uint64
		for {
			cursor = n.store.Scan(cursor, 100, nil, func([]byte, storeKind, int64) { keys++ })
			if cursor == 0 {
				break
			}
		}
		if got := int64(n.store.Len()); got != keys {
			t.Fatalf("DBSIZE %d but SCAN found %d keys", got, keys)
		}
		n.store.Flush(nil)
	})
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, b[start:i])
			start = i + 1
		}
	}
	return append(out, b[start:])
}

func splitWords(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i, c := range b {
		if c == ' ' {
			if start >= 0 {
				out = append(out, b[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, b[start:])
	}
	return out
}

// nopWriter discards replies, to measure the command path alone.
type nopWriter struct{}

func (nopWriter) SimpleString(string)     {}
func (nopWriter) Error(string)            {}
func (nopWriter) Int(int64)               {}
func (nopWriter) Bulk([]byte)             {}
func (nopWriter) BulkString(string)       {}
func (nopWriter) Null()                   {}
func (nopWriter) NullArray()              {}
func (nopWriter) Array(int)               {}
func (nopWriter) Map(int)                 {}
func (nopWriter) Set(int)                 {}
func (nopWriter) Double(float64)          {}
func (nopWriter) Bool(bool)               {}
func (nopWriter) Verbatim(string, []byte) {}
func (nopWriter) Push(int)                {}
func (nopWriter) SetProtocol(int)         {}

func benchExec(b *testing.B, args ...string) {
	n, _ := newTestNode(b, Config{})
	c := n.newClient(nil, "bench", "bench")
	argv := make([][]byte, len(args))
	for i, a := range args {
		argv[i] = []byte(a)
	}
	var w nopWriter
	c.Exec(w, [][]byte{[]byte("SET"), []byte("key:000001"), make([]byte, 64)})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.Exec(w, argv)
	}
}

func BenchmarkExecGet(b *testing.B)  { benchExec(b, "GET", "key:000001") }
func BenchmarkExecSet(b *testing.B)  { benchExec(b, "SET", "key:000001", string(make([]byte, 64))) }
func BenchmarkExecIncr(b *testing.B) { benchExec(b, "INCR", "counter") }
func BenchmarkExecMGet(b *testing.B) { benchExec(b, "MGET", "key:000001", "key:000002", "key:000003") }

type storeKind = store.Kind

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100": 100, "1k": 1000, "1kb": 1024, "2MB": 2 << 20, "1gb": 1 << 30, "3g": 3e9} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "+1", " 1", "1 ", "1tb", "kb", "01", "9223372036854775807kb"} {
		if v, err := ParseMemory(bad); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", bad, v)
		}
	}
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"1gb", "100", "-1", "5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseMemory(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseMemory(%q) = %d: negative", s, v)
		}
	})
}

func TestHandlerPanicBecomesAnError(t *testing.T) {
	n, _ := newTestNode(t, Config{Logger: slog.New(slog.DiscardHandler)})
	s := connect(t, n)
	boom := &Command{Name: "boom", fullName: "boom", Arity: 2, FirstKey: 1, LastKey: 1, Step: 1, Handler: func(c *Client, args [][]byte) {
		var h store.Handle
		c.open(&h, args[1])
		defer h.Close()
		panic("handler bug")
	}}
	var w valueWriter
	s.c.w = &w
	s.c.call(boom, [][]byte{[]byte("boom"), []byte("k")})
	if w.result != Error("ERR internal error running 'boom'") {
		t.Fatalf("reply to a panicking handler: %#v", w.result)
	}
	// The key's shard lock was released: the node still serves that key.
	s.expect("OK", "SET", "k", "v")
}
