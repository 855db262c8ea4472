package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedb/sluice/bench/internal/load"
)

// server is one Sluice or Redis process started by the harness.
type server struct {
	name  string // "sluice" or "redis"
	addr  string // RESP address
	admin string // Sluice's admin HTTP address, "" for Redis
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	err   error         // why it exited, once done
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before the server binds it; start then fails and says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startSluice starts the sluice binary at bin on free loopback ports, with
// extra environment variables env. Each line it writes to standard error
// goes to stderr (the logs, and the GC trace when GODEBUG asks for one).
func startSluice(bin string, env []string, stderr func(line string)) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--admin-port", strconv.Itoa(adminPort),
		"--log-level", "warn",
	}
	// Listeners with a default port would collide with other servers on a
	// shared machine: give each a free one, when the binary has it.
	for _, flag := range optionalPorts(bin) {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		args = append(args, flag, strconv.Itoa(p))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	s := &server{
		name:  "sluice",
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
	}
	return s, s.start(cmd, stderr)
}

// optionalPorts lists the port flags of bin beyond --port and --admin-port
// (--fb-port, and the cluster's as they arrive), read from its --help, so
// that the harness measures older revisions too.
func optionalPorts(bin string) []string {
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	var flags []string
	for _, f := range []string{"--fb-port", "--gossip-port", "--cluster-port"} {
		if bytes.Contains(out, []byte(f)) {
			flags = append(flags, f)
		}
	}
	return flags
}

// startRedis starts Debian's redis-server on a free loopback port with
// persistence off, as Sluice has none; every other setting is Redis's
// default (no maxmemory, one I/O thread).
func startRedis() (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("redis-server",
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	s := &server{name: "redis", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	return s, s.start(cmd, nil)
}

// start runs cmd and waits until the server answers PING.
func (s *server) start(cmd *exec.Cmd, stderr func(string)) error {
	var tail bytes.Buffer // the last output, for the error if it dies
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if stderr != nil {
				stderr(line)
			}
			if tail.Len() < 4096 {
				tail.WriteString(line + "\n")
			}
		}
		io.Copy(io.Discard, r)
	}()
	go func() {
		s.err = cmd.Wait()
		w.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := load.Dial(s.addr)
		if err == nil {
			reply, err := c.Do("PING")
			c.Close()
			if err == nil && reply == "PONG" {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start (%v): %s", s.name, s.err, tail.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s did not answer PING on %s within 15s", s.name, s.addr)
		}
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (s *server) stop() {
	if s == nil || s.cmd == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// alive reports an error if the process has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited: %v", s.name, s.err)
	default:
		return nil
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// rss is the process's resident set (VmRSS in /proc/PID/status), in bytes.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// cpu is the CPU time the process has used, user and system (utime and
// stime in /proc/PID/stat), to 10 ms.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid()))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:])) // field 3 onwards
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// switches is the number of context switches of the process's live threads,
// voluntary (a thread blocked: a futex, epoll_wait, a read) and not (the
// kernel preempted it), from /proc/PID/task/*/status.
func (s *server) switches() int64 {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.pid()))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", s.pid(), t.Name()))
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}

// metrics reads the Prometheus metrics of Sluice's admin listener, keyed by
// the series as written (name and labels), for the series the harness uses.
func (s *server) metrics() (map[string]float64, error) {
	if s.admin == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "go_") && !strings.HasPrefix(line, "process_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// info returns one field of INFO's reply, e.g. info("memory", "used_memory").
func (s *server) info(section, field string) (string, error) {
	c, err := load.Dial(s.addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	reply, err := c.Do("INFO", section)
	if err != nil {
		return "", err
	}
	text, ok := reply.(string)
	if !ok {
		return "", fmt.Errorf("INFO replied %v", reply)
	}
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO %s has no %s", section, field)
}

// do sends one command on a new connection and fails on an error reply.
func (s *server) do(args ...string) (any, error) {
	c, err := load.Dial(s.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	reply, err := c.Do(args...)
	if err != nil {
		return nil, err
	}
	if e, ok := reply.(load.ServerError); ok {
		return nil, fmt.Errorf("%s: %s replied %s", s.name, strings.Join(args, " "), e)
	}
	return reply, nil
}
