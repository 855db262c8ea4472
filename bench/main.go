// Command bench measures Sluice side by side with Redis on this machine and
// writes the report: `make bench` (about 6 minutes on 2 cores) or `make
// bench-quick` (about a minute, a smoke test of the harness), from the
// module's root.
//
// It builds cmd/sluice, starts it and Debian's redis-server on free loopback
// ports with equal settings (no persistence, no memory limit), and drives
// both: with redis-benchmark where it can express the workload, and with
// its own load generator (bench/internal/load: pipelined RESP, a latency
// histogram) where it cannot. Each workload runs Sluice, then the baseline,
// then Sluice again, and so on (a b a b a b), and the report gives the
// medians and their ratio, so that the load other users put on a shared
// machine falls on both sides alike. Besides throughput and client-side p50
// and p99 latency, every run records the server's CPU time per command and,
// for Sluice, its heap allocations per command and GC cycles (from the admin
// listener's /metrics).
//
// Then, with fresh servers, the memory of 1M keys (16-byte keys, 64-byte
// values) as RSS and bytes per key; 10M keys loaded into a Sluice that runs
// with GODEBUG=gctrace=1, for the GC pauses, and into a Redis, for RSS and
// latency; and the allocations per operation of the hot paths in
// `go test -bench`.
//
// The report is written to -out with .md and .svg (a chart of the ratios)
// appended: bench/results/latest by default, bench/results/quick for -quick.
//
// For finding where the time goes: -only runs some workloads; -profile DIR
// records the first run of each side with `perf record -g` and writes the
// top of `perf report` per workload (the kernel's share included, which
// pprof would not show); -sluice-env tries runtime settings (GOGC,
// GOMAXPROCS, GODEBUG); -rev measures a committed revision, exported with
// git archive, while the shared working tree is half edited; -sluice
// measures a given binary. `go run ./bench -h` lists every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedb/sluice/limiter"
)

// harness is one run of the benchmarks.
type harness struct {
	ctx       context.Context
	quick     bool
	reps      int
	runTime   time.Duration
	keys      int // key space of the throughput workloads
	memKeys   int // keys in the memory workload
	gcKeys    int // keys in the GC workload
	benchTime string
	only      *regexp.Regexp
	// clientProcs is the harness's GOMAXPROCS. One by default: its load
	// generator then takes at most one core, as redis-benchmark does (it
	// is single-threaded), so the server gets the same room from either
	// driver.
	clientProcs int
	sluiceBin   string
	sluiceEnv   []string // -sluice-env: extra environment of every Sluice process
	root        string   // the module's root directory
	rev         string   // a git revision to measure instead of the working tree
	src         string   // where the measured source is: root, or an export of rev
	tmp         string
	profileDir  string // -profile: where perf reports of the Sluice runs go

	start0     time.Time
	step, want int
}

func main() {
	err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	h := &harness{}
	var out, only string
	flag.BoolVar(&h.quick, "quick", false, "a smoke test: one repetition of 1s per workload, 100k keys, 1M for GC")
	flag.IntVar(&h.reps, "reps", 5, "repetitions of each side of each workload")
	flag.DurationVar(&h.runTime, "time", 3*time.Second, "length of each run")
	flag.IntVar(&h.keys, "keys", 1_000_000, "key space of the throughput workloads")
	flag.IntVar(&h.memKeys, "mem-keys", 1_000_000, "keys loaded for the memory workload")
	flag.IntVar(&h.gcKeys, "gc-keys", 10_000_000, "keys loaded for the GC workload (0 skips it)")
	flag.StringVar(&h.benchTime, "benchtime", "1s", "-benchtime of the go test -bench step (empty skips it)")
	flag.StringVar(&only, "only", "", "run only the throughput workloads whose id matches this regexp (and skip memory, GC and go test unless it matches mem, gc, gotest)")
	flag.StringVar(&h.rev, "rev", "", "measure this git revision (exported with git archive) instead of the working tree, e.g. HEAD while others' edits are half done")
	flag.StringVar(&h.sluiceBin, "sluice", "", "a sluice binary to measure instead of building ./cmd/sluice")
	flag.IntVar(&h.clientProcs, "client-procs", 1, "GOMAXPROCS of the harness, whose load generator then uses as many cores as redis-benchmark (one)")
	flag.StringVar(&h.profileDir, "profile", "", "record the first run of each side of each workload with perf into this directory (the report then goes there too, unless -out says otherwise)")
	var sluiceEnv string
	flag.StringVar(&sluiceEnv, "sluice-env", "GOMAXPROCS=1", "environment variables for Sluice, space-separated, e.g. 'GOGC=200 GOMAXPROCS=2', to try runtime settings. "+
		"The default gives Sluice one core, as Redis serves commands on one thread, and leaves the other to the load generator (see README: Threads and memory)")
	flag.StringVar(&out, "out", "", "report path without extension (default bench/results/latest, or bench/results/quick with -quick)")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if h.quick {
		defaults := map[string]func(){
			"reps":      func() { h.reps = 1 },
			"time":      func() { h.runTime = time.Second },
			"keys":      func() { h.keys = 100_000 },
			"mem-keys":  func() { h.memKeys = 1_000_000 },
			"gc-keys":   func() { h.gcKeys = 1_000_000 },
			"benchtime": func() { h.benchTime = "20000x" },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	if out == "" && h.profileDir != "" {
		out = filepath.Join(h.profileDir, "report")
	}
	if out == "" {
		out = "bench/results/latest"
		if h.quick {
			out = "bench/results/quick"
		}
	}
	h.sluiceEnv = strings.Fields(sluiceEnv)
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		h.only = re
	}

	runtime.GOMAXPROCS(h.clientProcs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h.ctx = ctx
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return errors.New("run from inside the module (go env GOMOD is empty)")
	}
	h.root = filepath.Dir(strings.TrimSpace(string(gomod)))
	if !filepath.IsAbs(out) {
		out = filepath.Join(h.root, out)
	}
	if h.profileDir != "" {
		if err := os.MkdirAll(h.profileDir, 0o755); err != nil {
			return err
		}
	}
	if h.tmp, err = os.MkdirTemp("", "sluice-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(h.tmp)
	commit := ""
	if h.src, commit, err = h.source(); err != nil {
		return err
	}

	rep := &report{machine: describeMachine(h.root), started: time.Now(), quick: h.quick,
		reps: h.reps, memReps: h.memReps(), runTime: h.runTime, keys: h.keys, benchTime: h.benchTime}
	h.start0 = rep.started
	h.want = h.plannedSteps()
	h.say("%s, %d cores, load average %s; %s, %s", rep.machine.cpu, rep.machine.cores, rep.machine.load0, rep.machine.goVersion, rep.machine.redisVersion)

	if err := h.build(); err != nil {
		return err
	}
	rep.sluice = commit
	if h.sluiceBin != filepath.Join(h.tmp, "sluice") {
		rep.sluice = h.sluiceBin
	}
	if len(h.sluiceEnv) > 0 {
		rep.sluice += ", environment " + strings.Join(h.sluiceEnv, " ")
	}

	if rep.results, err = h.runThroughput(); err != nil {
		return err
	}
	if h.wants("mem") {
		if rep.mem, err = h.runMemory(); err != nil {
			return err
		}
	}
	if h.gcKeys > 0 && h.wants("gc") {
		if rep.big, err = h.runBig(); err != nil {
			return err
		}
	}
	if h.benchTime != "" && h.wants("gotest") {
		if rep.goBench, rep.goBenchFailed, err = h.runGoBench(); err != nil {
			return err
		}
	}
	if h.benchTime != "" && h.wants("fb") {
		if rep.fb, err = h.runFBBench(); err != nil {
			return err
		}
	}

	rep.elapsed = time.Since(rep.started)
	rep.machine.load1 = loadAverage()
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	notes := ""
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "analysis.md")); err == nil {
		notes = "analysis.md"
	}
	if err := os.WriteFile(out+".md", rep.markdown(filepath.Base(out)+".svg", notes), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(out+".svg", rep.chart(), 0o644); err != nil {
		return err
	}
	h.progress("wrote %s.md and %s.svg in %s", out, out, rep.elapsed.Round(time.Second))
	fmt.Print("\n" + string(rep.summary()))
	return nil
}

// wants reports whether the part named id is to run, given -only.
func (h *harness) wants(id string) bool { return h.only == nil || h.only.MatchString(id) }

// plannedSteps counts the progress lines a run prints, for the n/total in
// each.
func (h *harness) plannedSteps() int {
	n := 1 + 1 + 3 // build, start, preload
	for _, id := range workloadIDs {
		if h.wants(id) {
			n += 2 + 2*h.reps
		}
	}
	if h.wants("mem") {
		n += 2 * h.memReps()
	}
	if h.gcKeys > 0 && h.wants("gc") {
		n += 4
	}
	if h.benchTime != "" && h.wants("gotest") {
		n++
	}
	if h.benchTime != "" && h.wants("fb") {
		n++
	}
	return n + 1 // the report
}

// workloadIDs lists the throughput workloads' ids, for plannedSteps.
var workloadIDs = func() []string {
	var ids []string
	for _, w := range workloads(nil, nil, "", 1) {
		ids = append(ids, w.id)
	}
	return ids
}()

// say prints a line about the run without counting it as a step.
func (h *harness) say(format string, args ...any) {
	el := time.Since(h.start0).Round(time.Second)
	fmt.Printf("[        %5s] %s\n", fmtElapsed(el), fmt.Sprintf(format, args...))
}

// progress prints the line of a finished step.
func (h *harness) progress(format string, args ...any) {
	h.step++
	el := time.Since(h.start0).Round(time.Second)
	fmt.Printf("[%3d/%-3d %5s] %s\n", h.step, h.want, fmtElapsed(el), fmt.Sprintf(format, args...))
}

func fmtElapsed(d time.Duration) string {
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// build compiles ./cmd/sluice into the temporary directory, unless -sluice
// named a binary.
func (h *harness) build() error {
	if h.sluiceBin != "" {
		h.progress("using %s", h.sluiceBin)
		return nil
	}
	h.sluiceBin = filepath.Join(h.tmp, "sluice")
	cmd := exec.CommandContext(h.ctx, "go", "build", "-o", h.sluiceBin, "./cmd/sluice")
	cmd.Dir = h.src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	h.progress("built ./cmd/sluice from %s", h.src)
	return nil
}

// source returns the directory holding the source to measure, and its
// commit (with -dirty when the working tree has changes): the working tree,
// or with -rev an export of that revision into the temporary directory.
func (h *harness) source() (dir, commit string, err error) {
	if h.rev == "" {
		commit = output(h.root, "git", "describe", "--always", "--dirty", "--exclude", "*")
		// Name the uncommitted changes measured, which are often someone
		// else's work in progress in a shared tree.
		var changed []string
		for line := range strings.Lines(output(h.root, "git", "status", "--porcelain", "--untracked-files=no")) {
			if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[len(f)-1], "bench/") {
				changed = append(changed, f[len(f)-1])
			}
		}
		if len(changed) > 0 {
			commit += " (uncommitted changes to " + strings.Join(changed, ", ") + ")"
		}
		return h.root, commit, nil
	}
	dir = filepath.Join(h.tmp, "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", err
	}
	archive := exec.Command("git", "archive", "--format=tar", h.rev)
	archive.Dir = h.root
	untar := exec.Command("tar", "-x", "-C", dir)
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		return "", "", err
	}
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := untar.Start(); err != nil {
		return "", "", err
	}
	if err := errors.Join(archive.Run(), untar.Wait()); err != nil {
		return "", "", fmt.Errorf("git archive %s: %v: %s", h.rev, err, stderr.String())
	}
	return dir, output(h.root, "git", "rev-parse", "--short", h.rev), nil
}

// start starts a fresh server by name.
func (h *harness) start(name string, env []string, stderr func(string)) (*server, error) {
	if name == "redis" {
		return startRedis()
	}
	return startSluice(h.sluiceBin, append(slices.Clip(h.sluiceEnv), env...), stderr)
}

// runThroughput starts one Sluice and one Redis, loads the key space into
// both, and runs every throughput workload against them.
func (h *harness) runThroughput() ([]*result, error) {
	sl, err := h.start("sluice", nil, nil)
	if err != nil {
		return nil, err
	}
	defer sl.stop()
	rd, err := h.start("redis", nil, nil)
	if err != nil {
		return nil, err
	}
	defer rd.stop()
	reply, err := rd.do("SCRIPT", "LOAD", limiter.Script)
	if err != nil {
		return nil, err
	}
	sha, _ := reply.(string)
	h.progress("started sluice on %s (admin %s) and redis on %s; SCRIPT LOAD gcra.lua: %s", sl.addr, sl.admin, rd.addr, sha)
	if err := h.preload(sl, rd); err != nil {
		return nil, err
	}
	var results []*result
	for _, w := range workloads(sl, rd, sha, h.keys) {
		if !h.wants(w.id) {
			continue
		}
		res, err := h.runWorkload(w)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}
