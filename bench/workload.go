package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/sluicedb/sluice/bench/internal/load"
)

// The data every throughput workload runs over. Keys are 16 bytes (a
// 4-byte prefix and 12 digits, as redis-benchmark's __rand_int__ writes
// them) and values 64 bytes, on both servers.
const (
	clients   = 50
	valueSize = 64
	keyPrefix = "key:" // strings, SET on both servers
	cachePfx  = "cch:" // cache entries, CACHE.SET on Sluice
	throtPfx  = "thr:" // rate-limit buckets
	zipfTheta = 0.99
	// The bucket every CL.THROTTLE and EVALSHA request takes from: 1000
	// requests per hour with a burst of 1000. Each key is asked a few
	// times a second at most, so every decision is "allowed" and writes
	// the bucket, whose record outlives the run: the path that costs most,
	// and the one a limiter takes on nearly every request in practice.
	throttleBurst, throttleCount, throttlePeriod = "1000", "1000", "3600"
)

// value is the 64-byte value of every key, the one redis-benchmark -d 64
// writes.
var value = strings.Repeat("x", valueSize)

// cacheFresh is how long the cache entries loaded for CACHE.GET stay fresh:
// longer than any run.
const cacheFresh = "86400000"

// target is what a workload's ratio (Sluice over the baseline) must reach.
type target struct {
	min      float64 // the least throughput ratio
	p99      bool    // Sluice's p99 must also be no worse than the baseline's
	describe string
}

func (t target) met(ratio, p99Ratio float64) bool {
	return ratio >= t.min && (!t.p99 || p99Ratio <= 1)
}

// side is one of the two things a workload compares.
type side struct {
	label string // as the report names it
	srv   *server
	drv   driver
	probe []string // one request checked for a non-error reply before the runs
}

// workload is one line of the throughput table: Sluice (a) against a
// baseline (b), driven the same way.
type workload struct {
	id, title string
	a, b      side
	target    target
}

// workloads returns the throughput workloads over the servers sl and rd,
// with sha the SHA1 of limiter.Script loaded into rd, over keys keys.
func workloads(sl, rd *server, sha string, keys int) []*workload {
	r := strconv.Itoa(keys)
	get := []string{"-t", "get", "-d", strconv.Itoa(valueSize), "-r", r}
	set := []string{"-t", "set", "-d", strconv.Itoa(valueSize), "-r", r}
	rb := func(pipeline int, args ...string) driver {
		return &redisBenchmark{clients: clients, pipeline: pipeline, args: args}
	}
	probeKey := string(load.AppendKey(nil, keyPrefix, 0))
	both := func(id, title string, drv driver, probe []string, t target) *workload {
		return &workload{id: id, title: title, target: t,
			a: side{label: "Sluice", srv: sl, drv: drv, probe: probe},
			b: side{label: "Redis", srv: rd, drv: drv, probe: probe}}
	}
	atLeast := target{min: 1, p99: true, describe: "≥ 1.0×, p99 no worse"}

	zipf := load.NewZipf(uint64(keys), zipfTheta)
	mix := func(pipeline int) driver {
		return &generator{conns: clients, pipeline: pipeline, source: func(i int) load.Source {
			keys := zipf.Picker(uint64(i) + 1)
			return &load.Mix{
				PA: 0.9,
				A:  &load.Command{Args: []string{"GET", ""}, Key: 1, Prefix: keyPrefix, Keys: keys},
				B:  &load.Command{Args: []string{"SET", "", value}, Key: 1, Prefix: keyPrefix, Keys: keys},
				R:  rand.New(rand.NewPCG(uint64(i), 90)),
			}
		}}
	}

	throttle := []string{throtPfx + "__rand_int__", throttleBurst, throttleCount, throttlePeriod, "1"}
	throttleProbe := []string{throtPfx + "probe", throttleBurst, throttleCount, throttlePeriod, "1"}
	evalsha := append([]string{"EVALSHA", sha, "1"}, throttle...)
	cacheGet := []string{"CACHE.GET", cachePfx + "__rand_int__"}
	cacheKey := string(load.AppendKey(nil, cachePfx, 0))

	return []*workload{
		both("set-p1", "SET, 50 clients", rb(1, set...), []string{"SET", probeKey, value}, atLeast),
		both("get-p1", "GET, 50 clients", rb(1, get...), []string{"GET", probeKey}, atLeast),
		both("set-p16", "SET, 50 clients, -P 16", rb(16, set...), []string{"SET", probeKey, value}, atLeast),
		both("get-p16", "GET, 50 clients, -P 16", rb(16, get...), []string{"GET", probeKey}, atLeast),
		both("zipf-p1", "GET/SET 90/10, Zipf 0.99, 50 clients", mix(1), []string{"GET", probeKey},
			target{min: 1, describe: "≥ 1.0×"}),
		both("zipf-p16", "GET/SET 90/10, Zipf 0.99, 50 clients, -P 16", mix(16), []string{"GET", probeKey},
			target{min: 1, describe: "≥ 1.0×"}),
		{
			id: "throttle-p16", title: "CL.THROTTLE vs GCRA Lua (EVALSHA), 50 clients, -P 16",
			a: side{label: "Sluice CL.THROTTLE", srv: sl, drv: rb(16, append([]string{"-r", r, "CL.THROTTLE"}, throttle...)...),
				probe: append([]string{"CL.THROTTLE"}, throttleProbe...)},
			b: side{label: "Redis EVALSHA", srv: rd, drv: rb(16, append([]string{"-r", r}, evalsha...)...),
				probe: append([]string{"EVALSHA", sha, "1"}, throttleProbe...)},
			target: target{min: 3, describe: "≥ 3×"},
		},
		{
			id: "cacheget-p16", title: "CACHE.GET (fresh) vs GET, both on Sluice, 50 clients, -P 16",
			a: side{label: "Sluice CACHE.GET", srv: sl, drv: rb(16, append([]string{"-r", r}, cacheGet...)...),
				probe: []string{"CACHE.GET", cacheKey}},
			b: side{label: "Sluice GET", srv: sl, drv: rb(16, "-r", r, "GET", cachePfx+"__rand_int__"),
				probe: []string{"GET", cacheKey}},
			target: target{min: 0.9, describe: "≥ 0.9× (≤ 10% overhead)"},
		},
	}
}

// preload writes the keys the throughput workloads read: keys strings on
// both servers and as many cache entries on Sluice.
func (h *harness) preload(sl, rd *server) error {
	setArgs := []string{"SET", "", value}
	for _, srv := range []*server{sl, rd} {
		perSec, err := loadKeys(h.ctx, srv, h.keys, keyPrefix, setArgs, nil)
		if err != nil {
			return err
		}
		h.progress("preload %s: %d keys of %d bytes with SET, %s keys/s", srv.name, h.keys, valueSize, thousands(perSec))
	}
	perSec, err := loadKeys(h.ctx, sl, h.keys, cachePfx, []string{"CACHE.SET", "", value, "FRESH", cacheFresh}, nil)
	if err != nil {
		return err
	}
	h.progress("preload sluice: %d cache entries with CACHE.SET, %s keys/s", h.keys, thousands(perSec))
	return nil
}

// runWorkload probes both sides, calibrates each, then runs them in turn,
// a b a b …, reps times.
func (h *harness) runWorkload(w *workload) (*result, error) {
	res := &result{w: w}
	for _, s := range []side{w.a, w.b} {
		if _, err := s.srv.do(s.probe...); err != nil {
			return nil, fmt.Errorf("%s: probe: %w", w.id, err)
		}
	}
	sizes := [2]int{}
	for i, s := range []side{w.a, w.b} {
		size, err := s.drv.calibrate(h.ctx, s.srv, h.runTime)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", w.id, s.label, err)
		}
		sizes[i] = size
		if size > 0 {
			h.progress("%s: warm-up %s, %s requests per run", w.id, s.label, thousands(float64(size)))
		} else {
			h.progress("%s: warm-up %s", w.id, s.label)
		}
	}
	for rep := range h.reps {
		for i, s := range []side{w.a, w.b} {
			var prof *perfRun
			if h.profileDir != "" && rep == 0 {
				var err error
				if prof, err = startPerf(h.ctx, s.srv.pid(), h.profilePath(w, s), h.runTime); err != nil {
					return nil, err
				}
			}
			smp, err := measure(h.ctx, s.drv, s.srv, sizes[i], h.runTime)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", w.id, s.label, err)
			}
			if prof != nil {
				title := fmt.Sprintf("%s: %s, %s ops/s, p50 %s, p99 %s, server CPU %s/op, %.3f allocs/op",
					w.title, s.label, thousands(smp.perSec), ms(smp.p50), ms(smp.p99), us(smp.cpuPerOp()), smp.allocsPerOp())
				if err := prof.finish(h.ctx, title); err != nil {
					return nil, err
				}
				h.say("%s: profile of %s in %s", w.id, s.label, prof.out)
			}
			if i == 0 {
				res.a = append(res.a, smp)
			} else {
				res.b = append(res.b, smp)
			}
			h.progress("%s: %s rep %d/%d: %s ops/s, p50 %s, p99 %s, server CPU %s/op, %.2f switches/op",
				w.id, s.label, rep+1, h.reps, thousands(smp.perSec), ms(smp.p50), ms(smp.p99), us(smp.cpuPerOp()), smp.switchesPerOp())
		}
	}
	return res, nil
}

// result is a workload's samples, in run order.
type result struct {
	w    *workload
	a, b []sample
}

func (r *result) ratio() float64 {
	return median(r.a, func(s sample) float64 { return s.perSec }) /
		median(r.b, func(s sample) float64 { return s.perSec })
}

func (r *result) p99Ratio() float64 {
	return median(r.a, func(s sample) float64 { return float64(s.p99) }) /
		median(r.b, func(s sample) float64 { return float64(s.p99) })
}

// pairs is the least and greatest ratio of the runs made one after the
// other: how much the machine's noise moves the ratio.
func (r *result) pairs() (lo, hi float64) {
	for i := range r.a {
		q := r.a[i].perSec / r.b[i].perSec
		if i == 0 || q < lo {
			lo = q
		}
		if i == 0 || q > hi {
			hi = q
		}
	}
	return lo, hi
}
