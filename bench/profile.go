package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perfRun is a `perf record` of a server process during one run, for
// -profile (of both sides, so that Sluice's costs can be set against
// Redis's): cmd/sluice serves no pprof, and perf sees what pprof would not,
// the kernel's share (syscalls, the scheduler, loopback TCP), which is most
// of an unpipelined request's cost.
type perfRun struct {
	cmd  *exec.Cmd
	data string // perf.data path
	out  string // report path
	err  bytes.Buffer
}

// startPerf samples pid's stacks (frame pointers, which Go keeps) at 999 Hz
// for d, into path+".perf.data", which stays for perf report's other views.
func startPerf(ctx context.Context, pid int, path string, d time.Duration) (*perfRun, error) {
	p := &perfRun{data: path + ".perf.data", out: path + ".txt"}
	p.cmd = exec.CommandContext(ctx, "perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid),
		"-o", p.data, "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
	p.cmd.Stderr = &p.err
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	return p, nil
}

// finish waits for the recording and writes the report: the functions by
// their own share of the samples (as pprof -top) and by the share of the
// samples they are on the stack of (as pprof -top -cum).
func (p *perfRun) finish(ctx context.Context, title string) error {
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("perf record: %v: %s", err, p.err.String())
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n\nperf record -F 999 -g of the server process; %s\n", title, strings.TrimSpace(p.err.String()))
	for _, view := range []struct {
		title string
		args  []string
	}{
		{"flat: samples in the function itself (pprof -top)", []string{"--no-children", "--percent-limit", "0.4"}},
		{"cumulative: samples with the function on the stack (pprof -top -cum)", []string{"--children", "--percent-limit", "3"}},
	} {
		args := append([]string{"report", "-i", p.data, "--stdio", "--sort", "symbol", "-g", "none"}, view.args...)
		out, err := exec.CommandContext(ctx, "perf", args...).Output()
		if err != nil {
			return fmt.Errorf("perf report: %w", err)
		}
		fmt.Fprintf(&b, "\n== %s\n\n", view.title)
		for line := range strings.Lines(string(out)) {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				b.WriteString(strings.TrimRight(line, " \n") + "\n")
			}
		}
	}
	return os.WriteFile(p.out, b.Bytes(), 0o644)
}

// profilePath is where the profile of one side of a workload goes.
func (h *harness) profilePath(w *workload, s side) string {
	slug := strings.ToLower(strings.ReplaceAll(s.label, " ", "-"))
	slug = strings.ReplaceAll(slug, ".", "")
	return filepath.Join(h.profileDir, w.id+"-"+slug)
}
