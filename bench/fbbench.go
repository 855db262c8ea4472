package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The FlatBuffers API against RESP (issue 6): wire/fb's BenchmarkMGET64
// (a batch of 64 GETs through the FlatBuffers client against go-redis's
// MGET of the same 64 keys) and BenchmarkGET (one key each way), both
// sides in one process against one node, with one and with sixteen
// goroutines, three times. Each reports keys/s and its p99 per call.

// fbSide is the median of one side of one comparison.
type fbSide struct {
	keysPerSec, p99us float64
}

// fbResult is one comparison: fb against resp at one concurrency.
type fbResult struct {
	bench string // MGET64 or GET
	conc  int
	fb    fbSide
	resp  fbSide
}

var fbLine = regexp.MustCompile(`^Benchmark(MGET64|GET)/(fb|resp)/conc=(\d+)\S*\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) keys/s\s+[\d.]+ p50-µs\s+([\d.]+) p99-µs`)

// runFBBench runs the comparison and returns its medians.
func (h *harness) runFBBench() ([]fbResult, error) {
	bt := "1s"
	if h.quick {
		bt = "200ms"
	}
	args := []string{"test", "-run", "^$", "-bench", "^Benchmark(MGET64|GET)$", "-benchtime", bt, "-count", "3", "./wire/fb"}
	cmd := exec.CommandContext(h.ctx, "go", args...)
	cmd.Dir = h.src
	out, err := cmd.CombinedOutput()
	if h.ctx.Err() != nil {
		return nil, h.ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	type key struct {
		bench, side string
		conc        int
	}
	samples := map[key][]fbSide{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := fbLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		conc, _ := strconv.Atoi(m[3])
		var s fbSide
		s.keysPerSec, _ = strconv.ParseFloat(m[4], 64)
		s.p99us, _ = strconv.ParseFloat(m[5], 64)
		k := key{m[1], m[2], conc}
		samples[k] = append(samples[k], s)
	}
	med := func(k key) fbSide {
		ss := samples[k]
		return fbSide{
			keysPerSec: median(ss, func(s fbSide) float64 { return s.keysPerSec }),
			p99us:      median(ss, func(s fbSide) float64 { return s.p99us }),
		}
	}
	var res []fbResult
	for k := range samples {
		if k.side != "fb" || len(samples[key{k.bench, "resp", k.conc}]) == 0 {
			continue
		}
		res = append(res, fbResult{bench: k.bench, conc: k.conc, fb: med(k), resp: med(key{k.bench, "resp", k.conc})})
	}
	slices.SortFunc(res, func(a, b fbResult) int {
		if a.bench != b.bench {
			return strings.Compare(b.bench, a.bench) // MGET64 first
		}
		return a.conc - b.conc
	})
	h.progress("FlatBuffers against RESP: %d comparisons", len(res))
	return res, nil
}

// fbRows are the comparison's lines of the targets table.
func fbRows(res []fbResult) []row {
	var rows []row
	for _, r := range res {
		ratio := r.fb.keysPerSec / r.resp.keysPerSec
		lowerP99 := r.fb.p99us < r.resp.p99us
		rw := row{
			a:     fmt.Sprintf("%s keys/s, p99 %.0f µs", thousands(r.fb.keysPerSec), r.fb.p99us),
			b:     fmt.Sprintf("%s keys/s, p99 %.0f µs", thousands(r.resp.keysPerSec), r.resp.p99us),
			ratio: ratio,
		}
		switch r.bench {
		case "MGET64":
			rw.name = fmt.Sprintf("FlatBuffers batch of 64 GETs vs go-redis MGET 64, %d goroutine(s)", r.conc)
			rw.target, rw.min = "≥ 2× keys/s, lower p99", 2
			rw.met = ratio >= 2 && lowerP99
			rw.chartLabel = fmt.Sprintf("fb 64 GETs vs MGET, %d gor.", r.conc)
		default:
			rw.name = fmt.Sprintf("FlatBuffers GET vs go-redis GET, %d goroutine(s)", r.conc)
			rw.target, rw.min = "≥ 1.0×", 1
			rw.met = ratio >= 1
			rw.chartLabel = fmt.Sprintf("fb GET vs GET, %d gor.", r.conc)
		}
		var why []string
		if !lowerP99 {
			why = append(why, fmt.Sprintf("p99 %.2f× RESP's", r.fb.p99us/r.resp.p99us))
		}
		rw.verdict = verdict(rw.met, why)
		rows = append(rows, rw)
	}
	return rows
}
