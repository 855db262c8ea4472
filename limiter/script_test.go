package limiter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run gcra.lua on a real redis-server and compare it with
// Throttle. They fail, rather than skip, without redis-server: the script is
// the baseline of the benchmarks and must not drift from the Go code.

// redisConn is the least RESP2 client the tests need.
type redisConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// redisError is an error reply.
type redisError string

func (e redisError) Error() string { return string(e) }

// startRedis starts a redis-server without persistence on a free loopback
// port for the test, and connects to it.
func startRedis(t *testing.T) *redisConn {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not on PATH: the test compares gcra.lua with the Go limiter on a real Redis. " +
			"Install it (`make test` does, or `apt-get install redis-server`).")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	var out strings.Builder
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			c := &redisConn{conn, bufio.NewReader(conn)}
			t.Cleanup(func() { conn.Close() })
			if _, err := c.do("PING"); err == nil {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends a command and reads its reply: an int64, a string, nil, a []any,
// or a redisError as the error.
func (c *redisConn) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *redisConn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, redisError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			v, err := c.read()
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// throttleScript runs the script with the arguments of line (after the key).
func (c *redisConn) throttleScript(t *testing.T, sha, key, line string) ([5]int64, error) {
	t.Helper()
	v, err := c.do(append([]string{"EVALSHA", sha, "1", key}, strings.Fields(line)...)...)
	if err != nil {
		return [5]int64{}, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 5 {
		t.Fatalf("script reply %#v, want 5 integers", v)
	}
	var out [5]int64
	for i, x := range arr {
		if out[i], ok = x.(int64); !ok {
			t.Fatalf("script reply %#v, want 5 integers", v)
		}
	}
	return out, nil
}

func loadScript(t *testing.T, c *redisConn) string {
	t.Helper()
	v, err := c.do("SCRIPT", "LOAD", Script)
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	return v.(string)
}

// setState makes the Redis key hold the state the Go model holds: the TAT in
// decimal nanoseconds, or no key for an absent record.
func setState(t *testing.T, c *redisConn, key string, st State, present bool) {
	t.Helper()
	var err error
	if present {
		_, err = c.do("SET", key, strconv.FormatInt(st.TAT, 10))
	} else {
		_, err = c.do("DEL", key)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A burst on the server's own clock: with a 3600 s interval nothing refills
// during the test, so limited, limit and remaining must match exactly; retry
// and reset, which see the elapsed fraction of a second, within a second.
func TestScriptBurst(t *testing.T) {
	c := startRedis(t)
	sha := loadScript(t, c)
	var st State
	now := time.Now().UnixNano()
	for i, q := range []int64{1, 1, 0, 2, 1, 1, 7, 0, 5} {
		line := fmt.Sprintf("4 1 3600 %d", q)
		got, err := c.throttleScript(t, sha, "burst", line)
		if err != nil {
			t.Fatalf("call %d (%s): %v", i, line, err)
		}
		p, err := ParseThrottle(args(line))
		if err != nil {
			t.Fatal(err)
		}
		r, d := p.Apply(st, now)
		if d.Write {
			st = d.Next
		}
		want := r.Ints()
		if got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || (got[3] < 0) != (want[3] < 0) ||
			abs(got[3]-want[3]) > 1 || abs(got[4]-want[4]) > 1 {
			t.Errorf("call %d (CL.THROTTLE burst %s): script %v, Go %v", i, line, got, want)
		}
	}
	// What the script stored expires when the bucket is full again: 5
	// tokens taken at 3600 s each, so within 18000 s.
	if ttl, err := c.do("PTTL", "burst"); err != nil || ttl.(int64) <= 17990*1000 || ttl.(int64) > 18000*1000 {
		t.Errorf("PTTL = %v, %v; want just under 18000 s", ttl, err)
	}
}

func abs(x int64) int64 { return max(x, -x) }

// The tables of TestThrottleSequences, replayed through the script with its
// clock set by the test.
func TestScriptSequences(t *testing.T) {
	c := startRedis(t)
	sha := loadScript(t, c)
	for _, seq := range throttleSequences() {
		key := "seq:" + seq.name
		var st State
		present := false
		for i, step := range seq.steps {
			// The script's keys expire on the server's clock, not the
			// test's: restore the model's state before each call.
			setState(t, c, key, st, present)
			line := fmt.Sprintf("%s %d", withQuantity(step.args), step.now/1000)
			got, err := c.throttleScript(t, sha, key, line)
			if err != nil {
				t.Fatalf("%s, step %d: %v", seq.name, i, err)
			}
			if got != step.want {
				t.Errorf("%s, step %d: script CL.THROTTLE k %s = %v, want %v", seq.name, i, step.args, got, step.want)
			}
			p, _ := ParseThrottle(args(step.args))
			if _, d := p.Apply(st, step.now); d.Write {
				st, present = d.Next, true
			}
		}
	}
}

// withQuantity adds the default quantity to CL.THROTTLE arguments without
// one, so that a clock argument can follow.
func withQuantity(line string) string {
	if len(strings.Fields(line)) == 3 {
		return line + " 1"
	}
	return line
}

// Random arguments, valid and not, random states and times: the script and
// Throttle give the same replies or the same errors, and the script stores
// the same TAT.
func TestScriptMatchesThrottle(t *testing.T) {
	c := startRedis(t)
	sha := loadScript(t, c)
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	const exact = 1 << 53 // the script refuses tolerances from 2^53 ns
	compared := 0
	for seq := range 150 {
		burst := pick("0", "1", "2", "4", "15", "99", "-1", "+3", "007")
		count := pick("1", "2", "3", "7", "30", "1000", "999999", "500001", "2000000", "0", "-2", "x")
		period := pick("1", "2", "60", "3600", "86400", "0", "-60", "1.5")
		var st State
		present := false
		key := fmt.Sprintf("rand:%d", seq)
		now := t0 / 1000 // the script's clock is in microseconds
		for range 12 {
			line := burst + " " + count + " " + period + " " + pick("0", "1", "1", "2", "3", "5", "16", "100", "-1")
			if rng.IntN(20) == 0 {
				now -= rng.Int64N(3e6) // the clock steps back
			} else {
				now += rng.Int64N(4e6)
			}
			setState(t, c, key, st, present)
			got, err := c.throttleScript(t, sha, key, fmt.Sprintf("%s %d", line, now))
			p, goErr := ParseThrottle(args(line))
			if goErr != nil || err != nil {
				if err == nil || goErr == nil || err.Error() != goErr.Error() {
					t.Fatalf("CL.THROTTLE k %s: script %v, %v; Go %v", line, got, err, goErr)
				}
				break // the same error for every call of the sequence
			}
			if p.limit.tolerance >= exact {
				t.Fatalf("CL.THROTTLE k %s: the script accepted a tolerance of %d ns", line, p.limit.tolerance)
			}
			r, d := p.Apply(st, now*1000)
			if got != r.Ints() {
				t.Fatalf("CL.THROTTLE k %s at %d µs from TAT %d (present %v): script %v, Go %v",
					line, now, st.TAT, present, got, r.Ints())
			}
			compared++
			if d.Write {
				st, present = d.Next, true
			}
			stored, err := c.do("GET", key)
			if err != nil {
				t.Fatal(err)
			}
			want := any(nil)
			if present {
				want = strconv.FormatInt(st.TAT, 10)
			}
			// Redis expires the key by its own clock, not the script's now:
			// a state that lives under a second may be gone by the GET on a
			// loaded machine.
			shortLived := present && st.ExpireAtMillis()-now/1000 < 1000
			if stored != want && !(stored == nil && shortLived) {
				t.Fatalf("CL.THROTTLE k %s: the script stored %v, Go %v", line, stored, want)
			}
		}
	}
	if compared < 300 {
		t.Fatalf("only %d decisions compared", compared)
	}
	t.Logf("%d decisions compared", compared)
}

// The script's own refusals: a tolerance past 2^53 ns, which its doubles
// cannot count exactly, and a value it did not write.
func TestScriptErrors(t *testing.T) {
	c := startRedis(t)
	sha := loadScript(t, c)
	cases := []struct{ line, want string }{
		{"1 2 3 4 5 6", string(ErrThrottleUsage)},
		{"1 2", string(ErrThrottleUsage)},
		{"1 x 3", throttleNotInteger + "x"},
		{"1 0 3", string(ErrZeroRate)},
		// 104 days and more in the tolerance.
		{"0 1 9007200", string(ErrThrottleRange)},
		{"1 1 9223372037", string(ErrThrottleRange)},
	}
	for _, tc := range cases {
		if _, err := c.throttleScript(t, sha, "errors", tc.line); err == nil || err.Error() != tc.want {
			t.Errorf("script CL.THROTTLE k %s: %v, want %q", tc.line, err, tc.want)
		}
	}
	if _, err := c.do("SET", "corrupt", "not a time"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.throttleScript(t, sha, "corrupt", "1 1 1"); err == nil || err.Error() != string(ErrCorrupt) {
		t.Errorf("script on a corrupt record: %v, want %q", err, ErrCorrupt)
	}
}
