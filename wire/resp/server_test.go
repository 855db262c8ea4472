package resp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// startNode runs a node with a RESP server on a free loopback port.
func startNode(t testing.TB, cfg node.Config) (*node.Node, *Server) {
	t.Helper()
	return startServer(t, cfg, Config{})
}

// startServer is startNode with the server's Config (its Listener and
// Logger are filled in).
func startServer(t testing.TB, cfg node.Config, scfg Config) (*node.Node, *Server) {
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
	s, err := New(n, scfg)
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

// client is a raw RESP client for tests.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(t testing.TB, s *Server) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// encode writes a request as a multibulk.
func encode(b *bytes.Buffer, args ...string) {
	fmt.Fprintf(b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(a), a)
	}
}

func (c *client) write(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// do sends a request and returns its reply, raw.
func (c *client) do(args ...string) string {
	c.t.Helper()
	var b bytes.Buffer
	encode(&b, args...)
	c.write(b.String())
	return c.read()
}

// read returns the next reply, raw.
func (c *client) read() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := readReply(c.r)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return s
}

// expectEOF checks the server closes the connection, after replies in
// flight, within d.
func (c *client) expectEOF(d time.Duration) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	if s, err := readReply(c.r); err == nil {
		c.t.Fatalf("got %q, want the connection closed", s)
	} else if errors.Is(err, errTimeout) || isTimeout(err) {
		c.t.Fatalf("connection still open after %v", d)
	}
}

var errTimeout = errors.New("timeout")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readReply reads one RESP2 or RESP3 reply and returns its bytes.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return "", fmt.Errorf("bad line %q", line)
	}
	out := line
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return out, nil
	case '$', '=', '!':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil {
			return "", fmt.Errorf("bad length %q", line)
		}
		if n < 0 {
			return out, nil
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return "", err
		}
		return out + string(data), nil
	case '*', '%', '~', '>', '|':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil {
			return "", fmt.Errorf("bad count %q", line)
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for range n {
			s, err := readReply(r)
			if err != nil {
				return "", err
			}
			out += s
		}
		return out, nil
	}
	return "", fmt.Errorf("bad reply %q", line)
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

func TestPingSetGet(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	c.write("PING\r\n")
	if got := c.read(); got != "+PONG\r\n" {
		t.Fatalf("inline PING: %q", got)
	}
	if got := c.do("SET", "k", "v\r\n\x00"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := c.do("GET", "k"); got != bulk("v\r\n\x00") {
		t.Fatalf("GET: %q", got)
	}
	if got := c.do("GET", "missing"); got != "$-1\r\n" {
		t.Fatalf("GET missing: %q", got)
	}
	c.write(`SET "a key" 'a \'value\''` + "\r\n")
	if got := c.read(); got != "+OK\r\n" {
		t.Fatalf("inline SET: %q", got)
	}
	if got := c.do("GET", "a key"); got != bulk("a 'value'") {
		t.Fatalf("GET after inline SET: %q", got)
	}
	// The empty query and empty multibulks are ignored.
	c.write("\r\n*0\r\n*-10\r\n   \r\nPING\r\n")
	if got := c.read(); got != "+PONG\r\n" {
		t.Fatalf("PING after empty queries: %q", got)
	}
}

func TestRESP3(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	if got := c.do("HELLO", "3"); !strings.HasPrefix(got, "%") {
		t.Fatalf("HELLO 3: %q", got)
	}
	if got := c.do("GET", "missing"); got != "_\r\n" {
		t.Fatalf("GET missing in RESP3: %q", got)
	}
	if got := c.do("HELLO", "2"); !strings.HasPrefix(got, "*") {
		t.Fatalf("HELLO 2: %q", got)
	}
	if got := c.do("GET", "missing"); got != "$-1\r\n" {
		t.Fatalf("GET missing in RESP2: %q", got)
	}
}

// TestClientList checks the node learns both addresses of the connection.
func TestClientList(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	got := c.do("CLIENT", "INFO")
	for _, want := range []string{"addr=" + c.nc.LocalAddr().String(), "laddr=" + c.nc.RemoteAddr().String()} {
		if !strings.Contains(got, want) {
			t.Errorf("CLIENT INFO %q lacks %q", got, want)
		}
	}
}

// TestDeepPipeline sends 10,000 commands in one write.
func TestDeepPipeline(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	const n = 10000
	var b bytes.Buffer
	for range n {
		encode(&b, "INCR", "counter")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.nc.Write(b.Bytes())
	}()
	for i := 1; i <= n; i++ {
		if got, want := c.read(), ":"+strconv.Itoa(i)+"\r\n"; got != want {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	<-done
	if got := c.do("GET", "counter"); got != bulk(strconv.Itoa(n)) {
		t.Fatalf("GET counter: %q", got)
	}
}

// TestQuitPipeline is Redis's "Pipelined commands after QUIT must not be
// executed", also when they do not fit the read buffer.
func TestQuitPipeline(t *testing.T) {
	_, s := startNode(t, node.Config{})
	for _, size := range []int{3, 1024, 4 * readSize} {
		c := dial(t, s)
		var b bytes.Buffer
		encode(&b, "QUIT")
		encode(&b, "SET", "foo", strings.Repeat("x", size))
		c.write(b.String())
		if got := c.read(); got != "+OK\r\n" {
			t.Fatalf("QUIT: %q", got)
		}
		c.expectEOF(5 * time.Second)
		if got := dial(t, s).do("GET", "foo"); got != "$-1\r\n" {
			t.Fatalf("value of %d bytes: the SET after QUIT ran: %q", size, got)
		}
	}
}

// TestProtocolErrors sends the inputs of Redis's tests/unit/protocol.tcl:
// each gets Redis's error and the connection is closed.
func TestProtocolErrors(t *testing.T) {
	_, s := startNode(t, node.Config{})
	tests := []struct {
		input string
		want  string
	}{
		{"*3000000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"},
		{"set \"\"\"test-key\"\"\" test-value\r\nping\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{strings.Repeat("A", maxLine+1), "-ERR Protocol error: too big inline request\r\n"},
		{"*" + strings.Repeat("1", maxLine+1), "-ERR Protocol error: too big mbulk count string\r\n"},
		{"*1\r\n$" + strings.Repeat("1", maxLine+1), "-ERR Protocol error: too big bulk count string\r\n"},
		{"PING\r\n*x\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
	}
	for _, tt := range tests {
		c := dial(t, s)
		c.write(tt.input)
		var got string
		for range strings.Count(tt.want, "\r\n") {
			got += c.read()
		}
		if got != tt.want {
			t.Errorf("%.40q: got %q, want %q", tt.input, got, tt.want)
		}
		c.expectEOF(5 * time.Second)
	}
}

// TestProtocolDesync is Redis's "Protocol desync regression test": after a
// NUL the client streams data with no line end until the server closes the
// connection; it must then find Redis's error.
func TestProtocolDesync(t *testing.T) {
	_, s := startNode(t, node.Config{})
	for _, seq := range []string{"\x00", "*\x00", "$\x00"} {
		c := dial(t, s)
		c.write(seq)
		payload := []byte(strings.Repeat("A", 1024) + "\n")
		deadline := time.Now().Add(30 * time.Second)
		for {
			c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.nc.Write(payload[:1024]); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q: the server did not close the connection", seq)
			}
		}
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := c.r.ReadString('\n')
		if !strings.Contains(line, "Protocol error") {
			t.Errorf("%q: got %q, want a protocol error", seq, line)
		}
	}
	if got := dial(t, s).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING after the desync tests: %q", got)
	}
}

// TestHugeBulk checks a bulk length over proto-max-bulk-len is refused, and
// one under it that is announced but not sent allocates nothing.
func TestHugeBulk(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	c.write("*2\r\n$3\r\nGET\r\n$1000000000000\r\n")
	if got := c.read(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectEOF(5 * time.Second)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]*client, 10)
	for i := range clients {
		clients[i] = dial(t, s)
		clients[i].write("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc")
	}
	if got := dial(t, s).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Fatalf("10 clients announcing 512 MiB bulks made the server allocate %d bytes", grew)
	}
}

// TestProtoMaxBulkLenConfig checks CONFIG SET of the limit applies to the
// next request of an open connection.
func TestProtoMaxBulkLenConfig(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	if got := c.do("CONFIG", "SET", "proto-max-bulk-len", "1048576"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	c.write("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
	if got := c.read(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("got %q", got)
	}
	c.expectEOF(5 * time.Second)
}

func TestMaxClients(t *testing.T) {
	_, s := startNode(t, node.Config{Limits: node.Limits{MaxClients: 2}})
	a, b := dial(t, s), dial(t, s)
	for _, c := range []*client{a, b} {
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
	}
	c := dial(t, s)
	c.write("PING\r\n")
	if got := c.read(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("third client: %q", got)
	}
	c.expectEOF(5 * time.Second)
	a.nc.Close()
	// The slot frees once the server has seen a go.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := dial(t, s)
		c.write("PING\r\n")
		got := c.read()
		if got == "+PONG\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a client left: %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutputBufferLimit has a client pipeline GETs of a 1 MiB value without
// reading: the server must drop it, and keep serving others meanwhile.
func TestOutputBufferLimit(t *testing.T) {
	_, s := startNode(t, node.Config{Limits: node.Limits{OutputBufferLimit: 8 << 20}})
	other := dial(t, s)
	if got := other.do("SET", "big", strings.Repeat("v", 1<<20)); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	greedy := dial(t, s)
	// Until the server has registered it, CLIENT LIST would count one
	// client already.
	if got := greedy.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	var b bytes.Buffer
	for range 100 {
		encode(&b, "GET", "big")
	}
	go func() {
		for range 10 { // 1000 GETs, 1 GiB of replies
			greedy.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := greedy.nc.Write(b.Bytes()); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		start := time.Now()
		if got := other.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("PING took %v while a client was not reading", d)
		}
		if got := other.do("CLIENT", "LIST"); strings.Count(got, "id=") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client that does not read was not dropped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It gets what was written before the drop, then the end.
	greedy.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, greedy.nc); err != nil && isTimeout(err) {
		t.Fatal("the dropped client's connection is still open")
	}
}

// TestSlowReader checks a client that reads, slowly, is throttled rather
// than dropped, even when what it asked for is far over the limit.
func TestSlowReader(t *testing.T) {
	_, s := startNode(t, node.Config{Limits: node.Limits{OutputBufferLimit: 4 << 20}})
	c := dial(t, s)
	val := strings.Repeat("v", 256<<10)
	if got := c.do("SET", "big", val); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	const n = 200 // 50 MiB of replies
	var b bytes.Buffer
	for range n {
		encode(&b, "GET", "big")
	}
	go c.nc.Write(b.Bytes())
	want := bulk(val)
	for i := range n {
		if i%20 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if got := c.read(); got != want {
			t.Fatalf("reply %d: %d bytes", i, len(got))
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	_, s := startNode(t, node.Config{Limits: node.Limits{IdleTimeout: 200 * time.Millisecond}})
	busy, idle := dial(t, s), dial(t, s)
	if got := idle.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond {
		if got := busy.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("a client sending commands was closed: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	idle.expectEOF(time.Second)
}

// TestCloseDrains closes the server under a client's deep pipeline: every
// command that ran has its reply delivered, whole, before the connection
// closes, and idle clients do not hold Close up.
func TestCloseDrains(t *testing.T) {
	n, err := node.New(node.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(n, Config{Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	idle := dial(t, s)
	if got := idle.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	c := dial(t, s)
	var b bytes.Buffer
	for range 100000 {
		encode(&b, "INCR", "counter")
	}
	go c.nc.Write(b.Bytes())
	if got := c.read(); got != ":1\r\n" {
		t.Fatalf("first INCR: %q", got)
	}
	// The client keeps reading while the server closes, as a live client
	// does: a client that stops reading during the drain is dropped after a
	// second without progress, and its replies with it.
	type result struct {
		replies int
		err     error
	}
	read := make(chan result, 1)
	go func() {
		replies := 1
		for {
			c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := readReply(c.r)
			if err != nil {
				if isTimeout(err) {
					read <- result{replies, errors.New("connection left open")}
				} else {
					read <- result{replies, nil}
				}
				return
			}
			replies++
			if want := ":" + strconv.Itoa(replies) + "\r\n"; got != want {
				read <- result{replies, fmt.Errorf("reply %d: %q", replies, got)}
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	r := <-read
	if r.err != nil {
		t.Fatal(r.err)
	}
	replies := r.replies
	ran, err := n.Do(ctx, "GET", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ran.([]byte); string(v) != strconv.Itoa(replies) {
		t.Fatalf("%v INCRs ran, %d replies delivered", ran, replies)
	}
	if replies == 100000 {
		t.Log("the whole pipeline ran before Close; the test did not exercise draining")
	}
	idle.expectEOF(time.Second)
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Fatal("the server still accepts connections")
	}
	n.Close(ctx)
}

func TestClientKill(t *testing.T) {
	_, s := startNode(t, node.Config{})
	a, b := dial(t, s), dial(t, s)
	id := strings.TrimSuffix(strings.TrimPrefix(a.do("CLIENT", "ID"), ":"), "\r\n")
	if got := b.do("CLIENT", "KILL", "ID", id); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL: %q", got)
	}
	a.expectEOF(5 * time.Second)
	self := strings.TrimSuffix(strings.TrimPrefix(b.do("CLIENT", "ID"), ":"), "\r\n")
	if got := b.do("CLIENT", "KILL", "ID", self, "SKIPME", "no"); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL of itself: %q", got)
	}
	b.expectEOF(5 * time.Second)
}

// connOf finds the server side of a test client.
func connOf(t testing.TB, s *Server, c *client) *conn {
	t.Helper()
	id := strings.TrimSuffix(strings.TrimPrefix(c.do("CLIENT", "ID"), ":"), "\r\n")
	var found *conn
	s.conns.Range(func(sc *conn) bool {
		sc.mu.Lock()
		cl := sc.client
		sc.mu.Unlock()
		if cl != nil && strconv.FormatInt(cl.ID(), 10) == id {
			found = sc
			return false
		}
		return true
	})
	if found == nil {
		t.Fatalf("no connection for client %s", id)
	}
	return found
}

func invalidate(key string) func(node.Writer) {
	return func(w node.Writer) {
		w.Push(2)
		w.BulkString("invalidate")
		w.Array(1)
		w.BulkString(key)
	}
}

// TestSendAfterPendingReplies checks a push comes after the replies already
// produced, here ones still waiting in the output buffer because the client
// has not read them.
func TestSendAfterPendingReplies(t *testing.T) {
	_, s := startNode(t, node.Config{})
	a, b := dial(t, s), dial(t, s)
	a.do("HELLO", "3")
	val := strings.Repeat("v", 100<<10)
	a.do("SET", "big", val)
	sc := connOf(t, s, a)
	var p bytes.Buffer
	for range 50 { // 5 MiB: more than the socket buffers hold
		encode(&p, "GET", "big")
	}
	encode(&p, "INCR", "done")
	a.write(p.String())
	for b.do("GET", "done") != bulk("1") {
		time.Sleep(5 * time.Millisecond)
	}
	sc.Send(invalidate("k"))
	for i := range 50 {
		if got := a.read(); got != bulk(val) {
			t.Fatalf("reply %d: %.20q", i, got)
		}
	}
	if got := a.read(); got != ":1\r\n" {
		t.Fatalf("INCR: %q", got)
	}
	if got, want := a.read(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"; got != want {
		t.Fatalf("push: %q, want %q", got, want)
	}
	// An idle client gets a push at once.
	sc.Send(invalidate("idle"))
	if got, want := a.read(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$4\r\nidle\r\n"; got != want {
		t.Fatalf("push: %q, want %q", got, want)
	}
}

// TestSendConcurrent pushes from several goroutines while the client runs
// pipelined commands with aggregate replies: every push arrives whole,
// between replies, and the replies arrive in order.
func TestSendConcurrent(t *testing.T) {
	_, s := startNode(t, node.Config{})
	c := dial(t, s)
	c.do("HELLO", "3")
	c.do("MSET", "a", "1", "b", "2", "c", "3")
	sc := connOf(t, s, c)
	const cmds, senders, pushes = 20000, 4, 500
	var b bytes.Buffer
	for range cmds {
		encode(&b, "MGET", "a", "b", "c")
	}
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range pushes {
				sc.Send(invalidate(fmt.Sprintf("k%d-%d", i, j)))
				if j%50 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	go c.nc.Write(b.Bytes())
	mget := "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
	got := map[string]bool{}
	for replies := 0; replies < cmds || len(got) < senders*pushes; {
		r := c.read()
		switch {
		case r == mget:
			replies++
		case strings.HasPrefix(r, ">2\r\n$10\r\ninvalidate\r\n*1\r\n"):
			got[r] = true
		default:
			t.Fatalf("after %d replies and %d pushes: %q", replies, len(got), r)
		}
	}
	wg.Wait()
}

// TestTrackingInvalidation runs client-side caching through the node: the
// push for another client's write, and for one's own write, which must come
// after the write's reply.
func TestTrackingInvalidation(t *testing.T) {
	_, s := startNode(t, node.Config{})
	a, b := dial(t, s), dial(t, s)
	a.do("HELLO", "3")
	if got := a.do("CLIENT", "TRACKING", "ON"); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING: %q", got)
	}
	a.do("GET", "k")
	b.do("SET", "k", "1")
	if got, want := a.read(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"; got != want {
		t.Fatalf("push: %q, want %q", got, want)
	}
	a.do("GET", "k")
	if got := a.do("SET", "k", "2"); got != "+OK\r\n" {
		t.Fatalf("own SET: %q", got)
	}
	if got, want := a.read(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"; got != want {
		t.Fatalf("push after own SET: %q, want %q", got, want)
	}
}

// TestCloseDeadline closes the server while a client that does not read has
// output pending: Close gives up when ctx ends, and drops the connection.
func TestCloseDeadline(t *testing.T) {
	n, err := node.New(node.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(n, Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	c := dial(t, s)
	c.do("SET", "big", strings.Repeat("v", 1<<20))
	var b bytes.Buffer
	for range 30 {
		encode(&b, "GET", "big")
	}
	encode(&b, "INCR", "done")
	c.write(b.String())
	other := dial(t, s)
	for other.do("GET", "done") != bulk("1") {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the context's error", err)
	}
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c.nc); isTimeout(err) {
		t.Fatal("the connection is still open")
	}
	n.Close(context.Background())
}

func TestNewListenError(t *testing.T) {
	n, err := node.New(node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(n, Config{Addr: "127.0.0.1:-1"}); err == nil {
		t.Fatal("New listened on port -1")
	}
}

// TestKillBusyClient kills a client in the middle of a deep pipeline: the
// replies it gets are whole and in order, and no more than the commands run.
func TestKillBusyClient(t *testing.T) {
	n, s := startNode(t, node.Config{})
	a, b := dial(t, s), dial(t, s)
	id := strings.TrimSuffix(strings.TrimPrefix(a.do("CLIENT", "ID"), ":"), "\r\n")
	var p bytes.Buffer
	for range 100000 {
		encode(&p, "INCR", "counter")
	}
	go a.nc.Write(p.Bytes())
	if got := a.read(); got != ":1\r\n" {
		t.Fatalf("first INCR: %q", got)
	}
	if got := b.do("CLIENT", "KILL", "ID", id); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL: %q", got)
	}
	replies := 1
	for {
		a.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := readReply(a.r)
		if err != nil {
			if isTimeout(err) {
				t.Fatal("the killed client's connection is still open")
			}
			break
		}
		replies++
		if want := ":" + strconv.Itoa(replies) + "\r\n"; got != want {
			t.Fatalf("reply %d: %q", replies, got)
		}
	}
	v, err := n.Do(context.Background(), "GET", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if ran, _ := strconv.Atoi(string(v.([]byte))); ran < replies || ran == 100000 {
		t.Fatalf("%d commands ran, %d replies: want some commands left unrun and every reply for one that ran", ran, replies)
	}
}

func TestEffectiveLimits(t *testing.T) {
	got := effective(node.Limits{})
	if got.ProtoMaxBulkLen != 512<<20 || got.MaxArgs != 1<<20 || got.OutputBufferLimit != math.MaxInt64 {
		t.Fatalf("effective(zero) = %+v", got)
	}
	set := node.Limits{ProtoMaxBulkLen: 1, MaxArgs: 2, OutputBufferLimit: 3}
	if got := effective(set); got != set {
		t.Fatalf("effective(%+v) = %+v", set, got)
	}
}

// TestUnauthenticatedLimits checks the stricter request limits while a
// password is required, and that authenticating, by AUTH or by HELLO, in
// the same pipeline lifts them for the next request.
func TestUnauthenticatedLimits(t *testing.T) {
	_, s := startNode(t, node.Config{RequirePass: "secret"})
	big := strings.Repeat("v", 20000)
	var set bytes.Buffer
	encode(&set, "SET", "k", big)

	c := dial(t, s)
	c.write(set.String())
	if got := c.read(); got != "-ERR Protocol error: unauthenticated bulk length\r\n" {
		t.Fatalf("big SET before AUTH: %q", got)
	}
	c.expectEOF(5 * time.Second)

	c = dial(t, s)
	c.write("*11\r\n")
	if got := c.read(); got != "-ERR Protocol error: unauthenticated multibulk length\r\n" {
		t.Fatalf("11 arguments before AUTH: %q", got)
	}
	c.expectEOF(5 * time.Second)

	for _, auth := range []string{"AUTH secret\r\n", "HELLO 3 AUTH default secret\r\n"} {
		c = dial(t, s)
		c.write(auth + set.String())
		c.read()
		if got := c.read(); got != "+OK\r\n" {
			t.Fatalf("big SET after %q: %q", auth, got)
		}
	}
}
