package test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// lookTool finds a Redis program on PATH, failing the test with the fix when
// it is missing: these tests are never skipped.
func lookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not on PATH: the differential and CLI tests need Debian's redis-server 7.0 "+
			"(redis-server, redis-cli, redis-benchmark). `make test` installs it "+
			"(apt-get install redis-server redis-tools).", name)
	}
	return p
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a child process's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRedis runs a throwaway redis-server on a free loopback port, with no
// persistence, and returns its address once it answers PING. The server is
// killed when the test ends. extra are more `--name value` arguments.
func startRedis(t testing.TB, extra ...string) string {
	t.Helper()
	bin := lookTool(t, "redis-server")
	var lastErr error
	for range 3 { // the free port can be taken before redis binds it
		port := freePort(t)
		args := append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		}, extra...)
		cmd := exec.Command(bin, args...)
		out := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if err := waitPing(addr, exited, 10*time.Second); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%v\nredis-server output:\n%s", err, out)
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return addr
	}
	t.Fatalf("redis-server did not come up: %v", lastErr)
	return ""
}

// waitPing polls addr until PING gets any reply (NOAUTH counts: the server
// is up), the process exits, or the timeout passes.
func waitPing(addr string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			rc := &rawConn{conn: c, r: bufio.NewReader(c)}
			r := rc.Do("PING")
			rc.Close()
			if r.Kind == '+' || r.Kind == '-' {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PING reply from %s within %v", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
