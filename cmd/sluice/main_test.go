package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedb/sluice/wire/fb"
)

// TestBinary builds the sluice binary and runs it as an operator would.
func TestBinary(t *testing.T) {
	redisCLI, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("this test needs redis-cli; install redis-tools (make test does)")
	}
	bin := buildSluice(t)

	t.Run("serves, then drains on SIGTERM", func(t *testing.T) {
		const password = "s3cret-in-env"
		port, fbPort, adminPort := freePort(t), freePort(t), freePort(t)
		cmd := exec.Command(bin, "--port", port, "--fb-port", fbPort, "--admin-port", adminPort, "--log-format", "json")
		cmd.Env = append(os.Environ(), "SLUICE_REQUIREPASS="+password)
		var logs bytes.Buffer // read only after the process is gone
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("sluice's log:\n%s", logs.String())
			}
		})
		admin := "http://127.0.0.1:" + adminPort

		deadline := time.Now().Add(10 * time.Second)
		for code, _ := get(admin + "/readyz"); code != http.StatusOK; code, _ = get(admin + "/readyz") {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("sluice exited before it was ready: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz answered %d for 10 s", code)
			}
		}

		out, err := exec.Command(redisCLI, "-h", "127.0.0.1", "-p", port, "-a", password, "--no-auth-warning", "ping").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "PONG" {
			t.Errorf("redis-cli ping: %q, %v", out, err)
		}
		if err := fbRoundTrip("127.0.0.1:"+fbPort, password); err != nil {
			t.Errorf("FlatBuffers port: %v", err)
		}
		if code, body := get(admin + "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz: %d %q", code, body)
		}
		code, metrics := get(admin + "/metrics")
		for _, want := range []string{"\nsluice_", "\ngo_goroutines ", "\nprocess_resident_memory_bytes ", "\ngo_sched_pauses_stopping_gc_seconds_bucket{"} {
			if code != http.StatusOK || !strings.Contains(metrics, want) {
				t.Errorf("/metrics (%d) has no %q line", code, strings.TrimSpace(want))
			}
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			exited <- err
			if err != nil {
				t.Errorf("after SIGTERM: %v, want exit status 0", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("sluice still runs 5 s after SIGTERM")
		}
		for _, want := range []string{`"msg":"sluice started"`, `"resp":"127.0.0.1:` + port + `"`, `"fb":"127.0.0.1:` + fbPort + `"`, `"signal":"terminated"`, `"msg":"sluice stopped"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the log has no %s", want)
			}
		}
		if strings.Contains(logs.String(), password) {
			t.Error("the log shows the password")
		}
	})

	t.Run("bad settings exit 2", func(t *testing.T) {
		cmd := exec.Command(bin, "--maxmemory", "lots")
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitUsage {
			t.Errorf("exit: %v, want status %d", err, exitUsage)
		}
		if want := `sluice: --maxmemory: "lots"`; !strings.Contains(string(out), want) {
			t.Errorf("output %q does not contain %q", out, want)
		}
	})

	t.Run("--help exits 0", func(t *testing.T) {
		out, err := exec.Command(bin, "--help").Output()
		if err != nil || !strings.Contains(string(out), "SLUICE_MAXMEMORY_POLICY") {
			t.Errorf("sluice --help: %v\n%s", err, out)
		}
	})
}

// fbRoundTrip sets and reads a key through the FlatBuffers port, with the
// password; without it the operations must be refused.
func fbRoundTrip(addr, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	anon, err := fb.Dial(addr)
	if err != nil {
		return err
	}
	defer anon.Close()
	var b fb.Batch
	b.Get("fb-key")
	if err := anon.Do(ctx, &b); err != nil {
		return err
	}
	if err := b.Result(0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		return fmt.Errorf("GET without the password: %v, want NOAUTH", err)
	}
	c, err := fb.DialOptions(addr, fb.Options{Password: password})
	if err != nil {
		return err
	}
	defer c.Close()
	b.Reset()
	b.Set("fb-key", []byte("fb-value"), time.Minute)
	get := b.Get("fb-key")
	if err := c.Do(ctx, &b); err != nil {
		return err
	}
	if v, ok := b.Result(get).Value(); !ok || string(v) != "fb-value" {
		return fmt.Errorf("GET: %q, %v, %v", v, ok, b.Result(get).Err())
	}
	return nil
}

// buildSluice builds this package into a temporary directory, under the race
// detector when the test runs under it (which also reuses the packages the
// test build compiled).
func buildSluice(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH:", err)
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// get returns the status and body of a GET, or status 0 when it failed.
func get(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
