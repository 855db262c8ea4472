//go:build unix

package resp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// The hostile-load test's bounds.
const (
	// hostileConns caps the attacking connections; the file-descriptor
	// limit may lower it (each connection is two descriptors here, the
	// client's and the server's), and so does the race detector, which
	// allows 8128 goroutines.
	hostileConns     = 8000
	hostileConnsRace = 2500
	// hostileFor is how long the attack runs once every connection is open.
	hostileFor = 5 * time.Second
	// trickleEvery is how often each trickling connection sends a byte.
	trickleEvery = 500 * time.Millisecond
	// perConnBudget is what a held connection may cost the process, heap
	// and goroutine stack, both ends together, beyond the bytes it sent:
	// the server's 16 KiB input buffer, its goroutine and session, and the
	// client's socket. Measured at 25 KiB, 21 of heap (16 of them the input
	// buffer) and 4 of stack; see the test's log.
	perConnBudget = 48 << 10
	// goodP99 is the good client's worst acceptable p99 during the attack:
	// generous, for a shared machine and the race detector.
	goodP99 = time.Second
)

// raiseFileLimit raises the soft limit on open files to the hard limit for
// the test, and returns the limit.
func raiseFileLimit(t *testing.T) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < lim.Max {
		old := lim.Cur
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("setrlimit: %v; staying at %d", err, old)
			lim.Cur = old
		} else {
			t.Cleanup(func() {
				syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: old, Max: lim.Max})
			})
		}
	}
	return lim.Cur
}

// attack is one kind of hostile connection: what it sends once connected.
type attack struct {
	name    string
	share   int    // in hundredths of the connections
	send    string // sent at once
	trickle bool   // then sends trickleData a byte at a time
}

// trickleData is what trickling connections send, a byte every
// trickleEvery: an inline request whose line never ends.
var trickleData = "GET " + strings.Repeat("a", 60000)

// TestHostileLoad holds thousands of connections that send what a hostile
// client would (bulk lengths announced and never sent, frames that never
// end, long lines without an end, a byte now and then, nothing at all),
// while other connections keep sending bulk lengths over the limit and get
// refused, and a well-behaved client runs commands throughout. The server
// must stay responsive to that client (its p99 is bounded and logged), and
// its memory must stay bounded by what the connections sent plus a fixed
// cost per connection.
func TestHostileLoad(t *testing.T) {
	limit := raiseFileLimit(t)
	want := hostileConns
	if raceEnabled {
		want = hostileConnsRace
	}
	n := min(want, int(limit)/2-200)
	if n < 1000 {
		t.Fatalf("the file-descriptor limit (%d) allows only %d connections: raise it (ulimit -n) to run this test", limit, n)
	}
	_, s := startNode(t, node.Config{})
	attacks := []attack{
		{name: "bulk announced, 4 KiB sent", share: 20, send: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n" + strings.Repeat("v", 4096)},
		{name: "frame cut in a header", share: 20, send: "*3\r\n$3\r\nSET\r\n$1\r\nk"},
		{name: "frame cut in a count", share: 10, send: "*2\r\n$3\r\nGET\r\n$"},
		{name: "line of 48 KiB without an end", share: 5, send: "SET k " + strings.Repeat("x", 48<<10)},
		{name: "trickle", share: 30, trickle: true},
		{name: "silent", share: 15},
	}

	good := dial(t, s)
	if got := good.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// Open the connections and send each its attack.
	var conns, trickling []net.Conn
	var sent int64
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	openStart := time.Now()
	for _, a := range attacks {
		for range n * a.share / 100 {
			c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
			if err != nil {
				t.Fatalf("connection %d: %v", len(conns), err)
			}
			conns = append(conns, c)
			if a.send != "" {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, a.send); err != nil {
					t.Fatalf("%s: %v", a.name, err)
				}
				sent += int64(len(a.send))
			}
			if a.trickle {
				trickling = append(trickling, c)
			}
		}
	}
	t.Logf("%d hostile connections opened in %v", len(conns), time.Since(openStart).Round(time.Millisecond))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var trickled, refused, refusedWrong atomic.Int64
	wg.Go(func() { // the tricklers: a byte each per trickleEvery
		for i := 0; ; i++ {
			start := time.Now()
			for _, c := range trickling {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := io.WriteString(c, trickleData[i:i+1]); err == nil {
					trickled.Add(1)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(trickleEvery - time.Since(start)):
			}
		}
	})
	wg.Go(func() { // bulk lengths over the limit, refused, over and over
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
			if err != nil {
				continue
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "*2\r\n$3\r\nGET\r\n$99999999999\r\n")
			if line, _ := bufio.NewReader(c).ReadString('\n'); line == "-ERR Protocol error: invalid bulk length\r\n" {
				refused.Add(1)
			} else {
				refusedWrong.Add(1)
			}
			c.Close()
			time.Sleep(time.Millisecond)
		}
	})

	// The well-behaved client, throughout the attack.
	var lat []time.Duration
	attackStart := time.Now()
	for i := 0; time.Since(attackStart) < hostileFor; i++ {
		v := strconv.Itoa(i)
		start := time.Now()
		if got := good.do("SET", "good", v); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		lat = append(lat, time.Since(start))
		start = time.Now()
		if got := good.do("GET", "good"); got != bulk(v) {
			t.Fatalf("GET: %q", got)
		}
		lat = append(lat, time.Since(start))
		time.Sleep(time.Millisecond)
	}

	var during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&during)
	close(stop)
	wg.Wait()
	held := connectedClients(t, good) - 1 // all but the good client

	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	heap := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	stack := int64(during.StackInuse) - int64(before.StackInuse)
	t.Logf("connections held by the server: %d, for %d hostile ones open (a refused one may be on its way out); %d trickled bytes; %d over-limit bulks refused",
		held, len(conns), trickled.Load(), refused.Load())
	t.Logf("memory during the attack: heap +%s, goroutine stacks +%s: %s per held connection; %s sent by them in all",
		mib(heap), mib(stack), kib((heap+stack)/int64(max(held, 1))), mib(sent))
	t.Logf("good client: %d commands, p50 %v, p99 %v, max %v", len(lat), p50, p99, worst)

	if held < len(conns)*9/10 {
		t.Errorf("the server holds %d of the %d hostile connections: the test did not load it as meant", held, len(conns))
	}
	if p99 > goodP99 {
		t.Errorf("the good client's p99 was %v during the attack, over %v", p99, goodP99)
	}
	if budget := int64(len(conns))*perConnBudget + 2*sent + 16<<20; heap+stack > budget {
		t.Errorf("memory grew by %s, over the bound of %s (%s per connection, twice what they sent, 16 MiB)",
			mib(heap+stack), mib(budget), kib(perConnBudget))
	}
	if refused.Load() == 0 || refusedWrong.Load() > 0 {
		t.Errorf("over-limit bulk lengths: %d refused with the protocol error, %d otherwise", refused.Load(), refusedWrong.Load())
	}

	// The attackers leave: the server lets every connection go.
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(20 * time.Second); connectedClients(t, good) > 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after the attackers left", connectedClients(t, good)-1)
		}
	}
}

// connectedClients reads INFO's connected_clients.
func connectedClients(t *testing.T, c *client) int {
	info := c.do("INFO", "clients")
	i := strings.Index(info, "connected_clients:")
	if i < 0 {
		t.Fatalf("INFO clients: %q", info)
	}
	v, _, _ := strings.Cut(info[i+len("connected_clients:"):], "\r\n")
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("connected_clients: %q", v)
	}
	return n
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }
