package main

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is everything one run measured.
type report struct {
	machine   machine
	started   time.Time
	elapsed   time.Duration
	quick     bool
	reps      int
	memReps   int
	runTime   time.Duration
	keys      int
	benchTime string
	sluice    string // the commit or binary measured

	results       []*result
	mem           *memResult
	big           *bigResult
	goBench       []goBench
	goBenchFailed []string // packages whose benchmarks did not build or failed
	fb            []fbResult
}

// row is one line of the targets table and one bar of the chart.
type row struct {
	name       string
	a, b       string // Sluice's figure and the baseline's
	ratio      float64
	lo, hi     float64 // the range of paired ratios, 0 when not applicable
	target     string
	met        bool
	verdict    string
	atMost     bool    // the ratio must stay at or under min (memory)
	min        float64 // the target ratio, 0 when the row has none
	chartLabel string
}

func (r *report) rows() []row {
	var rows []row
	for _, res := range r.results {
		ratio, p99 := res.ratio(), res.p99Ratio()
		lo, hi := res.pairs()
		t := res.w.target
		row := row{
			name:       res.w.title,
			a:          thousands(median(res.a, perSec)) + " ops/s",
			b:          thousands(median(res.b, perSec)) + " ops/s",
			ratio:      ratio,
			lo:         lo,
			hi:         hi,
			target:     t.describe,
			met:        t.met(ratio, p99),
			min:        t.min,
			chartLabel: res.w.id,
		}
		if res.w.b.label != "Redis" {
			row.a = res.w.a.label + " " + row.a
			row.b = res.w.b.label + " " + row.b
		}
		var why []string
		if ratio < t.min {
			why = append(why, "throughput "+percent(1-ratio/t.min)+" short")
		}
		if t.p99 {
			if p99 > 1 {
				why = append(why, "p99 "+percent(p99-1)+" higher")
			} else {
				why = append(why, fmt.Sprintf("p99 %.2f×", p99))
			}
		}
		row.verdict = verdict(row.met, why)
		rows = append(rows, row)
	}
	if r.mem != nil {
		s, rd := r.mem.median("sluice"), r.mem.median("redis")
		ratio := float64(s.rss1) / float64(rd.rss1)
		row := row{
			name:       fmt.Sprintf("memory, %s keys of 16 bytes with 64-byte values: RSS", short(r.mem.keys)),
			a:          mib(s.rss1),
			b:          mib(rd.rss1),
			ratio:      ratio,
			target:     "≤ 1.0×",
			met:        ratio <= 1,
			atMost:     true,
			min:        1,
			chartLabel: "memory",
		}
		why := []string{fmt.Sprintf("%.0f vs %.0f bytes/key of RSS growth",
			float64(s.rss1-s.rss0)/float64(r.mem.keys), float64(rd.rss1-rd.rss0)/float64(r.mem.keys))}
		if !row.met {
			why = append([]string{fmt.Sprintf("%.0f%% more", 100*(ratio-1))}, why...)
		}
		row.verdict = verdict(row.met, why)
		rows = append(rows, row)
	}
	if r.big != nil {
		p99 := pauseQuantile(r.big.cycles, 0.99, stw)
		row := row{
			name:   fmt.Sprintf("GC with %s keys: stop-the-world pause p99", short(r.big.keys)),
			a:      ms(p99),
			b:      "",
			target: "< 1 ms",
			met:    p99 < time.Millisecond,
		}
		row.verdict = verdict(row.met, []string{fmt.Sprintf("%d cycles, max %s", len(r.big.cycles), ms(pauseQuantile(r.big.cycles, 1, stw)))})
		rows = append(rows, row)
	}
	rows = append(rows, fbRows(r.fb)...)
	if r.goBench != nil || r.goBenchFailed != nil {
		var nonZero []string
		for _, b := range r.goBench {
			if b.allocs != 0 {
				nonZero = append(nonZero, fmt.Sprintf("%s %s %g", b.pkg, b.name, b.allocs))
			}
		}
		row := row{
			name:   "hot paths in go test -bench: allocs/op",
			a:      fmt.Sprintf("%d of %d at 0", len(r.goBench)-len(nonZero), len(r.goBench)),
			target: "0",
			met:    len(nonZero) == 0 && len(r.goBench) > 0 && len(r.goBenchFailed) == 0,
		}
		for _, f := range r.goBenchFailed {
			nonZero = append(nonZero, "not measured: "+f)
		}
		row.verdict = verdict(row.met, nonZero)
		rows = append(rows, row)
	}
	return rows
}

// percent writes a fraction as a whole percentage, or to a tenth under 1%.
func percent(f float64) string {
	if f < 0.01 {
		return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
}

func verdict(met bool, why []string) string {
	v := "**missed**"
	if met {
		v = "met"
	}
	if len(why) > 0 {
		v += ": " + strings.Join(why, ", ")
	}
	return v
}

func stw(c gcCycle) time.Duration  { return c.stw }
func mark(c gcCycle) time.Duration { return c.mark }
func perSec(s sample) float64      { return s.perSec }

// median is the median of f over samples (the mean of the middle two for
// an even count).
func median[T any](samples []T, f func(T) float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (m *memResult) median(name string) memSample {
	s := m.samples[name]
	return memSample{
		rss0: int64(median(s, func(s memSample) float64 { return float64(s.rss0) })),
		rss1: int64(median(s, func(s memSample) float64 { return float64(s.rss1) })),
		used: int64(median(s, func(s memSample) float64 { return float64(s.used) })),
	}
}

// markdown renders the report; chart is the SVG's file name and notes, if
// not empty, the name of a hand-written analysis beside it to link to.
func (r *report) markdown(chart, notes string) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "`make bench`"
	if r.quick {
		mode = "`make bench-quick` (a smoke test: too short to judge by)"
	}
	p("# Sluice and Redis side by side\n\n")
	p("%s, %s, in %s. Each workload ran Sluice and its baseline in turn, %d time(s) each for %s "+
		"(a b a b a b), and the table compares the medians. Generated by `bench/`; rerun with `make bench`.\n\n",
		mode, r.started.UTC().Format("2006-01-02 15:04 UTC"), r.elapsed.Round(time.Second), r.reps, r.runTime)
	if notes != "" {
		p("Where the time goes for each target missed, with profiles: [%s](%s) (written by hand; check that it names the commit measured here).\n\n", notes, notes)
	}

	m := r.machine
	p("## The machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s, %d cores |\n", m.cpu, m.cores)
	p("| memory | %s |\n", m.memory)
	p("| kernel | Linux %s |\n", m.kernel)
	p("| load average (1, 5, 15 min) | %s at the start, %s at the end |\n", m.load0, m.load1)
	p("| Go | %s |\n", m.goVersion)
	p("| Redis | %s (Debian's redis-server: `--save '' --appendonly no`, otherwise defaults) |\n", m.redisVersion)
	p("| Sluice | %s (otherwise defaults: no memory limit, GOGC 100, one event loop per P) |\n\n", r.sluice)
	p("The machine is shared, and other users' builds and tests ran alongside: only the ratios of runs made " +
		"one after the other mean anything, and the range after each ratio is that of the individual pairs. " +
		"The load generator runs on the same two cores as the server it drives. " +
		"With GOMAXPROCS=1, Sluice takes one core, as Redis runs its commands on one thread, and leaves the other to the load generator; " +
		"with both cores, Sluice and the load generator compete for them and Sluice's tail latency suffers (see analysis.md).\n\n")

	p("## Targets\n\n| workload | Sluice | baseline | ratio | target | verdict |\n|---|--:|--:|--:|---|---|\n")
	for _, row := range r.rows() {
		ratio := ""
		if row.ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", row.ratio)
			if row.hi > row.lo {
				ratio += fmt.Sprintf(" (%.2f–%.2f)", row.lo, row.hi)
			}
		}
		p("| %s | %s | %s | %s | %s | %s |\n", row.name, row.a, row.b, ratio, row.target, row.verdict)
	}
	p("\n![Sluice/baseline ratios](%s)\n\n", chart)

	if len(r.results) > 0 {
		p("## Latency, client side\n\nMedians over the runs of each run's percentiles, as the driver measured them " +
			"(redis-benchmark, or the harness's generator for the Zipf mix), from the write of a request's batch to the read of its reply.\n\n")
		p("| workload | driver | Sluice p50 | Sluice p99 | baseline p50 | baseline p99 | p99 ratio |\n|---|---|--:|--:|--:|--:|--:|\n")
		for _, res := range r.results {
			q := func(s []sample, f func(sample) time.Duration) string {
				return ms(time.Duration(median(s, func(s sample) float64 { return float64(f(s)) })))
			}
			p50 := func(s sample) time.Duration { return s.p50 }
			p99 := func(s sample) time.Duration { return s.p99 }
			p("| %s | %s | %s | %s | %s | %s | %.2f× |\n", res.w.title, res.w.a.drv.name(),
				q(res.a, p50), q(res.a, p99), q(res.b, p50), q(res.b, p99), res.p99Ratio())
		}
		p("\n## Server cost per command\n\nCPU time of the server process (user and system, from /proc) per command; " +
			"context switches of its threads per command (/proc/PID/task/*/status); and for Sluice the heap allocations " +
			"per command and GC cycles per run (go_memstats_mallocs_total and go_gc_duration_seconds_count from its " +
			"/metrics, whose own scrape adds a few hundred allocations per run). Medians over the runs.\n\n")
		p("| workload | Sluice CPU/op | baseline CPU/op | Sluice switches/op | baseline switches/op | Sluice allocs/op | Sluice GC cycles/run |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, res := range r.results {
			cpu := func(s []sample) string {
				return us(time.Duration(median(s, func(s sample) float64 { return float64(s.cpuPerOp()) })))
			}
			p("| %s | %s | %s | %.3f | %.3f | %.3f | %.0f |\n", res.w.title, cpu(res.a), cpu(res.b),
				median(res.a, sample.switchesPerOp), median(res.b, sample.switchesPerOp),
				median(res.a, sample.allocsPerOp), median(res.a, func(s sample) float64 { return s.gcs }))
		}
		p("\n")
	}

	if r.mem != nil {
		s, rd := r.mem.median("sluice"), r.mem.median("redis")
		k := float64(r.mem.keys)
		p("## Memory: %s keys\n\n%s keys of 16 bytes with 64-byte values, written with pipelined SET into a fresh "+
			"process, then RSS (VmRSS) read %s later; medians of %d process(es) each.\n\n", short(r.mem.keys), short(r.mem.keys), settle, r.memReps)
		p("| | Sluice | Redis | Sluice/Redis |\n|---|--:|--:|--:|\n")
		p("| RSS after loading | %s | %s | %.2f× |\n", mib(s.rss1), mib(rd.rss1), float64(s.rss1)/float64(rd.rss1))
		p("| RSS of the empty process | %s | %s | |\n", mib(s.rss0), mib(rd.rss0))
		p("| RSS growth per key | %.0f B | %.0f B | %.2f× |\n", float64(s.rss1-s.rss0)/k, float64(rd.rss1-rd.rss0)/k,
			float64(s.rss1-s.rss0)/float64(rd.rss1-rd.rss0))
		p("| INFO used_memory per key | %.0f B | %.0f B | %.2f× |\n\n", float64(s.used)/k, float64(rd.used)/k, float64(s.used)/float64(rd.used))
		p("Sluice's used_memory counts the bytes its store accounts for (entries, index, records); Redis's is " +
			"what its allocator handed out. RSS is what the machine pays.\n\n")
	}

	if g := r.big; g != nil {
		k := float64(g.keys)
		p("## %s keys\n\nLoaded with pipelined SET into a fresh Sluice started with `GODEBUG=gctrace=1`, then a "+
			"GET/SET 90/10 mix over a Zipf(0.99) distribution of the keys, 50 clients unpipelined, for %s; then the same "+
			"in a fresh Redis.\n\n", short(g.keys), 2*r.runTime)
		p("| | Sluice | Redis |\n|---|--:|--:|\n")
		p("| loading, keys/s | %s | %s |\n", thousands(g.loadPerSec["sluice"]), thousands(g.loadPerSec["redis"]))
		p("| RSS after the mix | %s | %s |\n", mib(g.rss1["sluice"]), mib(g.rss1["redis"]))
		p("| RSS growth per key | %.0f B | %.0f B |\n", float64(g.rss1["sluice"]-g.rss0["sluice"])/k, float64(g.rss1["redis"]-g.rss0["redis"])/k)
		sl, rd := g.steady["sluice"], g.steady["redis"]
		p("| mix throughput | %s ops/s | %s ops/s |\n", thousands(sl.perSec), thousands(rd.perSec))
		p("| mix latency p50 / p99 | %s / %s | %s / %s |\n\n", ms(sl.p50), ms(sl.p99), ms(rd.p50), ms(rd.p99))
		var load, steady []gcCycle
		for _, c := range g.cycles {
			if c.phase == "load" {
				load = append(load, c)
			} else {
				steady = append(steady, c)
			}
		}
		p("Sluice's garbage collector, from its gctrace: %d cycles while loading, %d during the mix.\n\n", len(load), len(steady))
		p("| | p50 | p99 | max |\n|---|--:|--:|--:|\n")
		p("| stop-the-world pause (both phases of a cycle) | %s | %s | %s |\n",
			ms(pauseQuantile(g.cycles, 0.5, stw)), ms(pauseQuantile(g.cycles, 0.99, stw)), ms(pauseQuantile(g.cycles, 1, stw)))
		p("| concurrent mark, wall time | %s | %s | %s |\n\n",
			ms(pauseQuantile(g.cycles, 0.5, mark)), ms(pauseQuantile(g.cycles, 0.99, mark)), ms(pauseQuantile(g.cycles, 1, mark)))
		if n := len(g.cycles); n > 0 {
			p("GC's share of Sluice's CPU since it started: %d%%. ", g.cycles[n-1].pct)
		}
		p("With fewer than 100 cycles the p99 is the largest pause. The runtime's own go_gc_duration_seconds "+
			"quantiles (0, 0.25, 0.5, 0.75, 1) at the end: %s, %s, %s, %s, %s.\n\n",
			sec(g.pauses["0"]), sec(g.pauses["0.25"]), sec(g.pauses["0.5"]), sec(g.pauses["0.75"]), sec(g.pauses["1"]))
		p("<details><summary>Sluice's gctrace</summary>\n\n```\n%s\n```\n\n</details>\n\n", strings.Join(g.trace, "\n"))
	}

	if len(r.goBench) > 0 || len(r.goBenchFailed) > 0 {
		p("## Hot paths in `go test -bench`\n\n")
		for _, gb := range goBenchmarks {
			p("    go test -run '^$' -bench '%s' -benchmem -benchtime %s %s\n", gb.pattern, r.benchTime, gb.pkg)
		}
		p("\n")
		for _, f := range r.goBenchFailed {
			p("- not measured: %s\n", f)
		}
		if len(r.goBenchFailed) > 0 {
			p("\n")
		}
		p("| package | benchmark | ns/op | B/op | allocs/op |\n|---|---|--:|--:|--:|\n")
		for _, g := range r.goBench {
			p("| %s | %s | %.1f | %g | %g |\n", g.pkg, g.name, g.nsPerOp, g.bytes, g.allocs)
		}
		p("\n")
	}

	if len(r.results) > 0 {
		p("## Every run\n\nIn the order they ran.\n\n| workload | rep | side | ops/s | p50 | p99 | CPU/op | switches/op | allocs/op |\n|---|--:|---|--:|--:|--:|--:|--:|--:|\n")
		for _, res := range r.results {
			for i := range res.a {
				for j, s := range []sample{res.a[i], res.b[i]} {
					label := res.w.a.label
					if j == 1 {
						label = res.w.b.label
					}
					allocs := "–"
					if a := s.allocsPerOp(); a >= 0 {
						allocs = strconv.FormatFloat(a, 'f', 3, 64)
					}
					p("| %s | %d | %s | %s | %s | %s | %s | %.3f | %s |\n", res.w.id, i+1, label, thousands(s.perSec), ms(s.p50), ms(s.p99),
						us(s.cpuPerOp()), s.switchesPerOp(), allocs)
				}
			}
		}
		p("\n")
	}
	return b.Bytes()
}

// summary is the targets table as plain text, for the terminal.
func (r *report) summary() []byte {
	var b bytes.Buffer
	for _, row := range r.rows() {
		ratio := ""
		if row.ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", row.ratio)
		}
		fmt.Fprintf(&b, "%-62s %22s %22s %7s  %-22s %s\n", row.name, row.a, row.b, ratio, row.target, strings.ReplaceAll(row.verdict, "**", ""))
	}
	return b.Bytes()
}

// thousands formats v rounded, with commas between thousands.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 3, 64) + " ms" }
func us(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1e6, 'f', 2, 64) + " µs" }
func sec(s float64) string      { return ms(time.Duration(s * float64(time.Second))) }
func mib(b int64) string        { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }

// short writes a key count as 100k, 1M or 10M.
func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
