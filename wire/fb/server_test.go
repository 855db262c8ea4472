package fb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// startNode runs a node with a FlatBuffers server on a free loopback port.
func startNode(t testing.TB, cfg node.Config, scfg Config) (*node.Node, *Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scfg.Listener, scfg.Logger = ln, cfg.Logger
	s, err := NewServer(n, scfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(s)
	n.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("closing the node: %v", err)
		}
	})
	return n, s
}

// dialClient connects a client that is closed with the test.
func dialClient(t testing.TB, s *Server, o Options) *Client {
	t.Helper()
	c, err := DialOptions(s.Addr(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func do(t testing.TB, c *Client, b *Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Do(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// frozenClock is a store.Clock that stands still, so that durations in
// replies are exact.
type frozenClock int64

func (c frozenClock) Now() int64 { return int64(c) }

func TestOperations(t *testing.T) {
	n, s := startNode(t, node.Config{Clock: frozenClock(time.Now().UnixNano())}, Config{})
	c := dialClient(t, s, Options{})
	ctx := context.Background()
	if err := n.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Set(ctx, "empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Throttle(ctx, "bucket", node.Limit{Rate: 1, Period: time.Hour}, 1); err != nil {
		t.Fatal(err)
	}

	var b Batch
	get := b.Get("k")
	missing := b.Get("missing")
	empty := b.Get("empty")
	wrongType := b.Get("bucket")
	set := b.Set("warm", []byte("hot"), time.Minute)
	afterSet := b.Get("warm")
	miss := b.CacheGet("cached", 0)
	wait := b.CacheGet("cached", 0)
	take := b.Throttle("rl", node.Limit{Rate: 10, Period: time.Second, Burst: 2}, 1)
	take2 := b.Throttle("rl", node.Limit{Rate: 10, Period: time.Second, Burst: 2}, 1)
	limited := b.Throttle("rl", node.Limit{Rate: 10, Period: time.Second, Burst: 2}, 1)
	badCost := b.Throttle("rl", node.Limit{Rate: 10, Period: time.Second, Burst: 2}, 3)
	badLimit := b.Throttle("rl", node.Limit{Period: time.Second}, 1)
	badTTL := b.Set("x", []byte("y"), -time.Second)
	badLease := b.CacheGet("cached", -time.Second)
	noPass := b.auth("", "pw")
	do(t, c, &b)

	value := func(i int, want string, wantOK bool) {
		t.Helper()
		r := b.Result(i)
		if err := r.Err(); err != nil {
			t.Errorf("result %d: %v", i, err)
		}
		v, ok := r.Value()
		if string(v) != want || ok != wantOK {
			t.Errorf("result %d: value %q, %v; want %q, %v", i, v, ok, want, wantOK)
		}
	}
	failed := func(i int, want string) {
		t.Helper()
		if err := b.Result(i).Err(); err == nil || err.Error() != want {
			t.Errorf("result %d: error %v, want %q", i, err, want)
		}
	}
	value(get, "v", true)
	value(missing, "", false)
	value(empty, "", true)
	if err := b.Result(wrongType).Err(); !errors.Is(err, node.ErrWrongType) {
		t.Errorf("GET of a bucket: %v, want %v", err, node.ErrWrongType)
	}
	value(set, "", false)
	value(afterSet, "hot", true)
	if got, err := n.Do(ctx, "PTTL", "warm"); err != nil || got != int64(60000) {
		t.Errorf("PTTL warm = %v, %v", got, err)
	}

	if r := b.Result(miss); r.CacheState() != node.CacheMiss || r.Token() == 0 {
		t.Errorf("first CACHE.GET: %q token %d, want miss with a token", r.CacheState(), r.Token())
	}
	if r := b.Result(wait); r.CacheState() != node.CacheWait || r.Token() != 0 {
		t.Errorf("second CACHE.GET: %q token %d, want wait", r.CacheState(), r.Token())
	}
	if err := n.CacheFill(ctx, "cached", b.Result(miss).Token(), []byte("loaded"), time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}

	want := []node.ThrottleResult{
		{Allowed: true, Limit: 2, Remaining: 1, ResetAfter: 100 * time.Millisecond},
		{Allowed: true, Limit: 2, Remaining: 0, ResetAfter: 200 * time.Millisecond},
		{Allowed: false, Limit: 2, Remaining: 0, RetryAfter: 100 * time.Millisecond, ResetAfter: 200 * time.Millisecond},
	}
	for i, idx := range []int{take, take2, limited} {
		if got := b.Result(idx).Throttle(); got != want[i] {
			t.Errorf("THROTTLE %d: %+v, want %+v", i, got, want[i])
		}
	}
	failed(badCost, "ERR COST is larger than the bucket capacity")
	failed(badLimit, "ERR LIMIT must be positive")
	failed(badTTL, "ERR invalid expire time in 'set' command")
	failed(badLease, "ERR LEASE must be positive")
	failed(noPass, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")

	// Reuse: the batch runs a new set of operations.
	b.Reset()
	fresh := b.CacheGet("cached", time.Second)
	do(t, c, &b)
	if r := b.Result(fresh); r.CacheState() != node.CacheFresh || r.Token() != 0 {
		t.Errorf("CACHE.GET after fill: %q token %d", r.CacheState(), r.Token())
	} else if v, _ := r.Value(); string(v) != "loaded" {
		t.Errorf("CACHE.GET after fill: value %q", v)
	}
	if got := b.Result(1).Err(); got != ErrNoResult {
		t.Errorf("Result out of range: %v", got)
	}
	if _, err := n.CacheInvalidate(ctx, "cached"); err != nil {
		t.Fatal(err)
	}
	do(t, c, &b) // run again: same operations
	if r := b.Result(fresh); r.CacheState() != node.CacheRevalidate || r.Token() == 0 {
		t.Errorf("CACHE.GET after invalidate: %q token %d", r.CacheState(), r.Token())
	}
}

// TestThrottleMatchesRLTake runs the same decisions through RL.TAKE and the
// THROTTLE operation on twin buckets and expects the same five integers.
func TestThrottleMatchesRLTake(t *testing.T) {
	n, s := startNode(t, node.Config{Clock: frozenClock(time.Now().UnixNano())}, Config{})
	c := dialClient(t, s, Options{})
	ctx := context.Background()
	for _, tc := range []struct{ limit, period, burst, cost int64 }{
		{100, 60000, 10, 1}, {100, 60000, 10, 0}, {5, 1000, 0, 5}, {5, 1000, 0, 6}, {1, 1, 1, 1}, {3, 7, 2, 2},
		{0, 1000, 0, 1}, {10, 0, 0, 1}, {10, 1000, -1, 1}, {10, 1000, 10, -1}, {10, 1 << 62, 1, 1}, {1 << 62, 1, 1, 1},
	} {
		name := fmt.Sprintf("%+v", tc)
		args := []any{"RL.TAKE", "resp:" + name, "LIMIT", tc.limit, "PERIOD", tc.period, "COST", tc.cost}
		if tc.burst != 0 {
			args = append(args, "BURST", tc.burst)
		}
		var b Batch
		for range 3 {
			b.Throttle("fb:"+name, node.Limit{Rate: tc.limit, Period: time.Duration(tc.period) * time.Millisecond, Burst: tc.burst}, tc.cost)
		}
		if tc.period > 1<<40 {
			// Too long for a time.Duration on the client side: send the
			// milliseconds as they are.
			for i := range b.ops {
				b.ops[i].throttle[1] = tc.period
			}
		}
		do(t, c, &b)
		for i := range 3 {
			want, wantErr := n.Do(ctx, args...)
			r := b.Result(i)
			if wantErr != nil {
				if err := r.Err(); err == nil || err.Error() != wantErr.Error() {
					t.Errorf("%s #%d: error %v, want %v", name, i, err, wantErr)
				}
				continue
			}
			d := r.Throttle()
			limited := int64(0)
			if !d.Allowed {
				limited = 1
			}
			retry := int64(-1)
			if !d.Allowed {
				retry = d.RetryAfter.Milliseconds()
			}
			got := []any{limited, d.Limit, d.Remaining, retry, d.ResetAfter.Milliseconds()}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s #%d: %v, RL.TAKE says %v", name, i, got, want)
			}
		}
	}
}

func TestPipelining(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{})
	ctx := context.Background()
	for i := range 100 {
		if err := n.Set(ctx, fmt.Sprint("key", i), []byte(fmt.Sprint("value", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Raw frames, all written before any response is read.
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var out []byte
	for i := range 100 {
		var b Batch
		b.Get(fmt.Sprint("key", i))
		b.Get(fmt.Sprint("key", 99-i))
		out = append(out, b.encode(uint64(1000+i))...)
	}
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 100 {
		id, b := readResponse(t, nc, 2)
		if id != uint64(1000+i) {
			t.Fatalf("response %d has id %d", i, id)
		}
		for j, want := range []string{fmt.Sprint("value", i), fmt.Sprint("value", 99-i)} {
			if v, _ := b.Result(j).Value(); string(v) != want {
				t.Errorf("response %d result %d: %q, want %q", i, j, v, want)
			}
		}
	}
}

// readResponse reads one response frame of ops results from nc.
func readResponse(t testing.TB, nc net.Conn, ops int) (uint64, *Batch) {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatal(err)
	}
	b := &Batch{frame: make([]byte, binary.LittleEndian.Uint32(hdr[:]))}
	if _, err := io.ReadFull(nc, b.frame); err != nil {
		t.Fatal(err)
	}
	id, res, err := verifyResponse(b.frame, ops, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.res = res
	return id, b
}

// responseError reads one response frame from nc and returns its error field.
func responseError(t testing.TB, nc net.Conn) (uint64, string) {
	t.Helper()
	id, b := readResponse(t, nc, 0)
	var resp schema.Response
	resp.Init(b.frame, flatbuffers.GetUOffsetT(b.frame))
	return id, string(resp.Error())
}

// TestConcurrentClients runs many goroutines over one shared client and
// over several clients, each checking its own results; run it with -race.
func TestConcurrentClients(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{})
	ctx := context.Background()
	for i := range 64 {
		if err := n.Set(ctx, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	shared := dialClient(t, s, Options{Conns: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		c := shared
		if g%4 == 0 {
			c = dialClient(t, s, Options{Conns: 1})
		}
		wg.Go(func() {
			var b Batch
			for round := range 200 {
				b.Reset()
				first := (g + round) % 64
				for i := range 8 {
					b.Get(fmt.Sprint("k", (first+i)%64))
				}
				lim := b.Throttle(fmt.Sprint("rl", g), node.Limit{Rate: 1000, Period: time.Second}, 1)
				if err := c.Do(ctx, &b); err != nil {
					errs <- err
					return
				}
				for i := range 8 {
					v, ok := b.Result(i).Value()
					if want := fmt.Sprint("v", (first+i)%64); !ok || string(v) != want {
						errs <- fmt.Errorf("goroutine %d round %d: %q, want %q", g, round, v, want)
						return
					}
				}
				if d := b.Result(lim).Throttle(); !d.Allowed {
					errs <- fmt.Errorf("goroutine %d round %d: throttled: %+v", g, round, d)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestAuth(t *testing.T) {
	n, s := startNode(t, node.Config{RequirePass: "secret"}, Config{})
	if _, err := DialOptions(s.Addr(), Options{Password: "wrong"}); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("dial with a wrong password: %v", err)
	}
	if _, err := DialOptions(s.Addr(), Options{User: "alice", Password: "secret"}); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Errorf("dial as an unknown user: %v", err)
	}

	// No password: every operation but AUTH is refused.
	c := dialClient(t, s, Options{})
	var b Batch
	b.Get("k")
	b.Set("k", []byte("v"), 0)
	b.auth("", "secret")
	b.Set("k", []byte("v"), 0)
	b.Get("k")
	do(t, c, &b)
	for i := range 2 {
		if err := b.Result(i).Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
			t.Errorf("before AUTH, result %d: %v", i, err)
		}
	}
	for i := 2; i < 5; i++ {
		if err := b.Result(i).Err(); err != nil {
			t.Errorf("after AUTH, result %d: %v", i, err)
		}
	}

	for _, user := range []string{"", "default"} {
		c := dialClient(t, s, Options{User: user, Password: "secret", Conns: 3})
		var b Batch
		b.Get("k")
		do(t, c, &b)
		if v, _ := b.Result(0).Value(); string(v) != "v" {
			t.Errorf("user %q: %q", user, v)
		}
	}

	// The password is the node's, as it is now.
	if _, err := n.Do(context.Background(), "CONFIG", "SET", "requirepass", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := DialOptions(s.Addr(), Options{Password: "secret"}); err == nil {
		t.Error("the old password still works after CONFIG SET requirepass")
	}
	dialClient(t, s, Options{Password: "new"})

	// Unauthenticated connections may send 16 KiB frames at most.
	nc := rawConn(t, s)
	var big Batch
	big.Set("k", make([]byte, unauthMaxFrame), 0)
	nc.Write(big.encode(7))
	if _, msg := responseError(t, nc); msg != string(errFrameTooLarge) {
		t.Errorf("a large frame before AUTH: %q", msg)
	}
	expectClosed(t, nc)
}

func rawConn(t testing.TB, s *Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

// expectClosed reads from nc and expects the server to have closed it.
func expectClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	var buf [1]byte
	n, err := nc.Read(buf[:])
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("the connection is still open: read %d bytes, %v", n, err)
	}
}

// TestMalformedFrames sends hostile frames: each gets an error frame and a
// closed connection, and the server goes on serving another client.
func TestMalformedFrames(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{MaxFrame: 1 << 20})
	if err := n.Set(context.Background(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	good := func() []byte {
		var b Batch
		b.Get("k")
		return b.encode(5)
	}
	frame := func(msg []byte) []byte {
		return binary.LittleEndian.AppendUint32(nil, uint32(len(msg)))
	}
	for _, tc := range []struct {
		name string
		data []byte
		want frameError
	}{
		{"over the limit", binary.LittleEndian.AppendUint32(nil, 1<<20+1), errFrameTooLarge},
		{"4 GiB length", []byte{0xff, 0xff, 0xff, 0xff}, errFrameTooLarge},
		{"RESP on the wrong port", []byte("*1\r\n$4\r\nPING\r\n"), errFrameTooLarge},
		{"empty message", frame(nil), errShort},
		{"root past the end", append(frame(make([]byte, 8)), 0xf0, 0, 0, 0, 0, 0, 0, 0), errRoot},
		{"vtable before the start", append(frame(make([]byte, 8)), 4, 0, 0, 0, 0x40, 0, 0, 0), errVtable},
		{"garbage", append(frame(make([]byte, 16)), bytes.Repeat([]byte{0xab}, 16)...), errRoot},
		{"truncated message", func() []byte {
			g := good()
			binary.LittleEndian.PutUint32(g, uint32(len(g)-4-8))
			return g[:len(g)-8]
		}(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := rawConn(t, s)
			if _, err := nc.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			_, msg := responseError(t, nc)
			if tc.want == "" && !strings.HasPrefix(msg, "ERR Protocol error: ") || tc.want != "" && msg != string(tc.want) {
				t.Errorf("error frame %q, want %q", msg, tc.want)
			}
			expectClosed(t, nc)
		})
	}

	t.Run("truncated then hang up", func(t *testing.T) {
		nc := rawConn(t, s)
		g := good()
		nc.Write(g[:len(g)-3])
		nc.Close()
	})

	t.Run("too many operations keeps the connection", func(t *testing.T) {
		_, s := startNode(t, node.Config{}, Config{})
		nc := rawConn(t, s)
		var b Batch
		for range MaxOps + 1 {
			b.Get("")
		}
		nc.Write(b.encode(9))
		if id, msg := responseError(t, nc); id != 9 || msg != string(errTooManyOps) {
			t.Errorf("response %d %q", id, msg)
		}
		nc.Write(good())
		if id, b := readResponse(t, nc, 1); id != 5 {
			t.Errorf("next response has id %d", id)
		} else if v, ok := b.Result(0).Value(); ok {
			t.Errorf("next response: %q", v)
		}
	})

	t.Run("unknown operation kind", func(t *testing.T) {
		c := dialClient(t, s, Options{})
		var b Batch
		b.Get("k")
		b.ops[0].kind = 200
		b.Get("k")
		do(t, c, &b)
		if err := b.Result(0).Err(); err == nil || err.Error() != "ERR unknown operation kind 200" {
			t.Errorf("unknown kind: %v", err)
		}
		if v, _ := b.Result(1).Value(); string(v) != "v" {
			t.Errorf("the next operation: %q", v)
		}
	})

	// Everyone else is still served.
	c := dialClient(t, s, Options{})
	var b Batch
	b.Get("k")
	do(t, c, &b)
	if v, _ := b.Result(0).Value(); string(v) != "v" {
		t.Errorf("after the hostile clients: %q", v)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{MaxFrame: 64 << 10})
	if err := n.Set(context.Background(), "big", make([]byte, 20<<10), 0); err != nil {
		t.Fatal(err)
	}
	c := dialClient(t, s, Options{MaxFrame: 64 << 10})
	var b Batch
	for range 5 {
		b.Get("big")
	}
	do(t, c, &b)
	for i := range 5 {
		v, ok := b.Result(i).Value()
		err := b.Result(i).Err()
		switch {
		case i < 3 && (err != nil || len(v) != 20<<10):
			t.Errorf("result %d: %d bytes, %v", i, len(v), err)
		case i >= 3 && (ok || err == nil || err.Error() != string(errResponseTooLarge)):
			t.Errorf("result %d: %d bytes, %v; want the response size error", i, len(v), err)
		}
	}
	b.Reset()
	b.Set("k", make([]byte, 64<<10), 0)
	if err := c.Do(context.Background(), &b); err != ErrBatchTooLarge {
		t.Errorf("a batch over MaxFrame: %v", err)
	}
}

func TestMaxClients(t *testing.T) {
	n, s := startNode(t, node.Config{Limits: node.Limits{MaxClients: 2}}, Config{})
	full := dialClient(t, s, Options{Conns: 2})
	var b Batch
	b.Get("k")
	for range 2 { // a round trip on each connection: both are clients now
		do(t, full, &b)
	}
	nc := rawConn(t, s)
	if _, msg := responseError(t, nc); msg != node.ErrMaxClients.Error() {
		t.Errorf("third connection: %q", msg)
	}
	expectClosed(t, nc)
	c, err := DialOptions(s.Addr(), Options{Conns: 1})
	if err == nil {
		err = c.Do(context.Background(), &b)
		c.Close()
	}
	if err == nil || err.Error() != node.ErrMaxClients.Error() {
		t.Errorf("a client over maxclients: %v", err)
	}
	if got, err := n.Do(context.Background(), "INFO", "clients"); err != nil || !strings.Contains(fmt.Sprint(got), "connected_clients:2\r\n") {
		t.Errorf("INFO clients: %q, %v", got, err)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, s := startNode(t, node.Config{Limits: node.Limits{IdleTimeout: 100 * time.Millisecond}}, Config{})
	nc := rawConn(t, s)
	start := time.Now()
	expectClosed(t, nc)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("closed after %v", d)
	}
}

// TestCloseDrains closes the server while clients are busy: every Do
// either succeeds or fails with a connection error, none hangs, and Close
// returns.
func TestCloseDrains(t *testing.T) {
	n, err := node.New(node.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(n, Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(s)
	n.Start()
	c, err := Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var b Batch
			b.Set("k", []byte("v"), 0)
			b.Get("k")
			for {
				if err := c.Do(context.Background(), &b); err != nil {
					return
				}
				if v, _ := b.Result(1).Value(); string(v) != "v" {
					t.Errorf("value %q", v)
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	wg.Wait()
}

func TestContextCancel(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{})
	if err := n.Set(context.Background(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	c := dialClient(t, s, Options{Conns: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b Batch
	b.Get("k")
	if err := c.Do(ctx, &b); err != context.Canceled {
		t.Errorf("Do with a canceled context: %v", err)
	}
	// Abandon requests in flight: the connection stays in step.
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
		c.Do(ctx, &b)
		cancel()
	}
	do(t, c, &b)
	if v, _ := b.Result(0).Value(); string(v) != "v" {
		t.Errorf("after abandoned requests: %q", v)
	}
}

func TestClientClose(t *testing.T) {
	_, s := startNode(t, node.Config{}, Config{})
	c := dialClient(t, s, Options{})
	c.Close()
	var b Batch
	b.Get("k")
	if err := c.Do(context.Background(), &b); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: %v", err)
	}
	if err := b.Result(0).Err(); err != ErrNoResult {
		t.Errorf("Result after a failed Do: %v", err)
	}
}

// TestLargeValues grows the server's input buffer, builder and output, and
// the client's frame, past their kept sizes and back.
func TestLargeValues(t *testing.T) {
	_, s := startNode(t, node.Config{}, Config{})
	c := dialClient(t, s, Options{Conns: 1})
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	var b Batch
	b.Set("big", big, 0)
	get := b.Get("big")
	do(t, c, &b)
	if v, _ := b.Result(get).Value(); !bytes.Equal(v, big) {
		t.Fatalf("GET of a 3 MiB value: %d bytes", len(v))
	}
	b.Reset()
	small := b.Get("big")
	b.Set("small", []byte("x"), 0)
	do(t, c, &b)
	if v, _ := b.Result(small).Value(); len(v) != len(big) {
		t.Fatalf("GET after Reset: %d bytes", len(v))
	}
}

// TestFraming sends frames a byte at a time, so that lengths and messages
// arrive split across reads, then several frames in one write.
func TestFraming(t *testing.T) {
	n, s := startNode(t, node.Config{}, Config{})
	if err := n.Set(context.Background(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	nc := rawConn(t, s)
	var b Batch
	b.Get("k")
	var frames []byte
	for id := range 3 {
		frames = append(frames, b.encode(uint64(id+1))...)
	}
	for i := range frames {
		if _, err := nc.Write(frames[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	nc.Write(frames)
	for i := range 6 {
		id, r := readResponse(t, nc, 1)
		if want := uint64(i%3 + 1); id != want {
			t.Errorf("response %d has id %d, want %d", i, id, want)
		}
		if v, _ := r.Result(0).Value(); string(v) != "v" {
			t.Errorf("response %d: %q", i, v)
		}
	}
}

// TestACL: operations are checked against the user's permissions on the
// command and the key, as on the RESP port, and deleting the user or
// CLIENT KILL closes the connection.
func TestACL(t *testing.T) {
	n, s := startNode(t, node.Config{RequirePass: "admin"}, Config{})
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"ACL", "SETUSER", "limiter", "on", ">pw", "~rl:*", "+rl.take"},
		{"SET", "secret", "v"},
	} {
		if _, err := n.Do(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	c := dialClient(t, s, Options{User: "limiter", Password: "pw", Conns: 1})
	var b Batch
	allowed := b.Throttle("rl:a", node.Limit{Rate: 10, Period: time.Second}, 1)
	otherKey := b.Throttle("other", node.Limit{Rate: 10, Period: time.Second}, 1)
	get := b.Get("secret")
	do(t, c, &b)
	if err := b.Result(allowed).Err(); err != nil {
		t.Errorf("RL.TAKE on rl:a: %v", err)
	}
	for i, want := range map[int]string{
		otherKey: "NOPERM this user has no permissions to access one of the keys used as arguments",
		get:      "NOPERM this user has no permissions to run the 'get' command",
	} {
		if err := b.Result(i).Err(); err == nil || err.Error() != want {
			t.Errorf("result %d: %v, want %q", i, err, want)
		}
	}

	if _, err := n.Do(ctx, "ACL", "DELUSER", "limiter"); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, &b); err == nil {
		if err := b.Result(allowed).Err(); err == nil {
			t.Error("the deleted user's connection still runs operations")
		}
	}

	nc := rawConn(t, s)
	b.Reset()
	b.auth("", "admin")
	nc.Write(b.encode(1))
	if _, r := readResponse(t, nc, 1); r.Result(0).Err() != nil {
		t.Fatal(r.Result(0).Err())
	}
	if _, err := n.Do(ctx, "CLIENT", "KILL", "ADDR", nc.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
}

// remoteListener makes every accepted connection report a client address
// of another host, to play such a client without leaving this one.
type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 50000}
}

func TestProtectedMode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		node    node.Config
		cfg     Config
		refused bool
	}{
		{"no password", node.Config{}, Config{}, true},
		{"password", node.Config{RequirePass: "pw"}, Config{}, false},
		{"turned off", node.Config{}, Config{DisableProtectedMode: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := node.New(node.Config{RequirePass: tc.node.RequirePass, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			tc.cfg.Listener = remoteListener{ln}
			s, err := NewServer(n, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			n.Attach(s)
			n.Start()
			defer n.Close(context.Background())
			nc := rawConn(t, s)
			var b Batch
			b.auth("", tc.node.RequirePass)
			b.Get("k")
			nc.Write(b.encode(1))
			if tc.refused {
				if _, msg := responseError(t, nc); msg != errProtectedMode {
					t.Errorf("got %q, want the protected-mode error", msg)
				}
				expectClosed(t, nc)
				return
			}
			if id, r := readResponse(t, nc, 2); id != 1 || r.Result(1).Err() != nil {
				t.Errorf("response %d: %v", id, r.Result(1).Err())
			}
		})
	}
}
