package resp

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// startRedis runs redis-server on a free loopback port (make test installs it).
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: make test installs it (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if nc, err := net.Dial("tcp", addr); err == nil {
			nc.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
	}
}

// exchange sends input on a new connection and returns what the server
// answers until it closes the connection or is quiet for a moment.
func exchange(addr string, input []byte) (out string, closed bool, err error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return "", false, err
	}
	defer nc.Close()
	go nc.Write(input)
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := nc.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return b.String(), false, nil
			}
			return b.String(), true, nil
		}
	}
}

// randomInput builds a stream of requests, well and badly formed, from the
// pieces that reach the reader's corner cases.
func randomInput(r *rand.Rand) []byte {
	alphabet := []byte("*$\r\n0123456789-+ \"'\\xabAF\x00\t")
	word := func() string {
		var b strings.Builder
		for range r.IntN(6) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	number := func() string {
		switch r.IntN(6) {
		case 0:
			return word()
		case 1:
			return "-" + strconv.Itoa(r.IntN(20))
		case 2:
			return strconv.Itoa(r.IntN(3000000000))
		default:
			return strconv.Itoa(r.IntN(4))
		}
	}
	var b bytes.Buffer
	for range 1 + r.IntN(5) {
		switch r.IntN(8) {
		case 0: // a well-formed ECHO with a binary payload
			arg := word()
			fmt.Fprintf(&b, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", len(arg), arg)
		case 1: // an inline ECHO with quoting
			b.WriteString("ECHO ")
			for range 1 + r.IntN(3) {
				w := strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(word())
				switch r.IntN(3) {
				case 0:
					w = `"` + w + `"`
				case 1:
					w = "'" + w + "'"
				}
				b.WriteString(w + " ")
			}
			b.WriteString([]string{"\r\n", "\n"}[r.IntN(2)])
		case 2:
			b.WriteString("*" + number() + "\r\n")
		case 3:
			b.WriteString("$" + number() + "\r\n")
		case 4:
			b.WriteString([]string{"\r\n", "\n", "PING\r\n", "*0\r\n", "*-1\r\n"}[r.IntN(5)])
		case 5: // a multibulk with a bad part
			fmt.Fprintf(&b, "*2\r\n$4\r\nECHO\r\n%s\r\n", word())
		default:
			b.WriteString(word())
		}
	}
	return b.Bytes()
}

// TestRedisProtocolCompat sends the same byte streams, fixed and random, to
// redis-server 7.0 and to Sluice, and wants the same replies, byte for
// byte, and the same verdict on closing the connection.
func TestRedisProtocolCompat(t *testing.T) {
	redis := startRedis(t)
	// Redis accepts any count up to INT_MAX; Sluice's default limit is 1M
	// arguments (node.Limits.MaxArgs). Lift it to compare the rest.
	_, s := startNode(t, node.Config{Limits: node.Limits{MaxArgs: math.MaxInt32}})
	inputs := []string{
		"\r\nPING\r\n", "*-10\r\nPING\r\n", "*3000000000\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "*1\r\nfoo\r\n", "set \"\"\"test-key\"\"\" test-value\r\nping\r\n",
		"ECHO \"\\x41\\x4\" 'a\\'b' \"\\n\"\r\n", "ECHO a\"b c\" d\r\n", "ECHO \"a\"b\r\n", "*1\rx$4\ryPING\r\n",
		"*2\r\n$4\r\nECHO\r\n$3\r\nabcxy*1\r\n$4\r\nPING\r\n", "*1\r\n\r\n", "*\r\n", "*-0\r\n", "*01\r\n",
		"PI\x00NG\r\n", "*1\x00\r\n", "ECHO\t a\vb \f\r\n", "  \r\nPING\r\n", "PING\r\r\n",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		inputs = append(inputs, string(randomInput(rng)))
	}
	compare(t, redis, s.Addr(), inputs)
}

// compare sends each input to both servers and reports where they differ.
func compare(t *testing.T, redis, sluice string, inputs []string) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, in := range inputs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var want, got string
			var wantClosed, gotClosed bool
			var err1, err2 error
			var both sync.WaitGroup
			both.Go(func() { want, wantClosed, err1 = exchange(redis, []byte(in)) })
			both.Go(func() { got, gotClosed, err2 = exchange(sluice, []byte(in)) })
			both.Wait()
			if err := errors.Join(err1, err2); err != nil {
				t.Errorf("%q: %v", in, err)
				return
			}
			if got != want || gotClosed != wantClosed {
				t.Errorf("input %s\n redis:  %s (closed %v)\n sluice: %s (closed %v)",
					clip(in, 0), clip(want, diffAt(want, got)), wantClosed, clip(got, diffAt(want, got)), gotClosed)
			}
		})
	}
	wg.Wait()
}

// TestRedisProtocolCompatAuth compares the stricter limits Redis puts on
// requests while a password is required: more than 10 arguments or a bulk
// longer than 16384 bytes is a protocol error until the client has
// authenticated.
func TestRedisProtocolCompatAuth(t *testing.T) {
	redis := startRedis(t, "--requirepass", "secret")
	_, s := startNode(t, node.Config{RequirePass: "secret"})
	var mset, mset12 bytes.Buffer
	encode(&mset, "MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	encode(&mset12, "MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f")
	big := strings.Repeat("x", 16385)
	var bigEcho, edgeEcho bytes.Buffer
	encode(&bigEcho, "ECHO", big)
	encode(&edgeEcho, "ECHO", big[1:])
	compare(t, redis, s.Addr(), []string{
		"*10\r\n$4\r\nPING\r\n",
		"*11\r\n",
		mset.String(),
		mset12.String(),
		"*3000000000\r\n",
		"*2\r\n$4\r\nECHO\r\n$16385\r\n",
		"*2\r\n$4\r\nECHO\r\n$-5\r\n",
		edgeEcho.String(),
		bigEcho.String(),
		"ECHO a b c d e f g h i j k l\r\n",
		"AUTH secret\r\n" + mset.String() + bigEcho.String(),
		"AUTH wrong\r\n" + mset.String(),
		"AUTH default secret\r\n" + bigEcho.String(),
	})
}

// diffAt is the offset of the first byte where a and b differ.
func diffAt(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// clip quotes s around offset at, shortened to what a reader can take in.
func clip(s string, at int) string {
	from := max(0, at-60)
	to := min(len(s), at+100)
	q := fmt.Sprintf("%q", s[from:to])
	if from > 0 {
		q = fmt.Sprintf("[%d bytes]...", from) + q
	}
	if to < len(s) {
		q += fmt.Sprintf("...[%d bytes]", len(s)-to)
	}
	return q
}
