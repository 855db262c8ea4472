package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goBenchmarks selects the hot paths' benchmarks, per package: GET, SET,
// CL.THROTTLE and CACHE.GET through the node's command table, the store and
// the limiter underneath, and the RESP reader, command and writer together.
// (node's BenchmarkGet is left out: the Go API's Get returns a copy of the
// value, by design.)
var goBenchmarks = []struct{ pkg, pattern string }{
	{"./node", `^BenchmarkExec(Get|Set|Throttle|CacheGet)$`},
	{"./store", `^Benchmark(Get|SetOverwrite)$`},
	{"./limiter", `^BenchmarkThrottle$`},
	{"./wire/resp", `^BenchmarkExecPipeline$`},
}

// goBench is one line of go test -bench -benchmem.
type goBench struct {
	pkg, name     string
	nsPerOp       float64
	bytes, allocs float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op.*?\s([\d.]+) B/op\s+([\d.]+) allocs/op`)

// runGoBench runs the hot paths' benchmarks with -benchmem, one package at
// a time: the tree is shared, and a package another engineer is in the
// middle of changing may not build, which is reported rather than fatal.
func (h *harness) runGoBench() ([]goBench, []string, error) {
	var res []goBench
	var failed []string
	for _, gb := range goBenchmarks {
		pkg := gb.pkg
		args := []string{"test", "-run", "^$", "-bench", gb.pattern, "-benchmem", "-benchtime", h.benchTime, pkg}
		cmd := exec.CommandContext(h.ctx, "go", args...)
		cmd.Dir = h.src
		out, err := cmd.CombinedOutput()
		if h.ctx.Err() != nil {
			return nil, nil, h.ctx.Err()
		}
		if err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			failed = append(failed, fmt.Sprintf("%s (%v: %s)", strings.TrimPrefix(pkg, "./"), err, first))
			h.say("go test -bench %s failed: %v\n%s", pkg, err, out)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			b := goBench{pkg: strings.TrimPrefix(pkg, "./"), name: m[1]}
			b.nsPerOp, _ = strconv.ParseFloat(m[2], 64)
			b.bytes, _ = strconv.ParseFloat(m[3], 64)
			b.allocs, _ = strconv.ParseFloat(m[4], 64)
			res = append(res, b)
		}
	}
	zero := 0
	for _, b := range res {
		if b.allocs == 0 {
			zero++
		}
	}
	h.progress("go test -bench -benchmem: %d hot-path benchmarks, %d with 0 allocs/op, %d package(s) failed", len(res), zero, len(failed))
	return res, failed, nil
}
