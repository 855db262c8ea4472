package main

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluicedb/sluice/bench/internal/load"
)

// memSample is one server's memory after loading a data set into a fresh
// process.
type memSample struct {
	rss0, rss1 int64 // resident set before and after loading
	used       int64 // INFO memory used_memory after loading
}

// memResult is the memory workload: per server name, one sample per
// repetition.
type memResult struct {
	keys    int
	samples map[string][]memSample
}

// settle is how long the harness waits after loading before it reads RSS,
// so that the last writes' buffers are freed and the reading is stable.
const settle = time.Second

// runMemory loads h.memKeys keys (16-byte keys, 64-byte values, pipelined
// SET) into a fresh Sluice and a fresh Redis in turn, h.reps times, and
// reads their RSS from /proc.
func (h *harness) runMemory() (*memResult, error) {
	res := &memResult{keys: h.memKeys, samples: map[string][]memSample{}}
	reps := h.memReps()
	for rep := range reps {
		for _, name := range []string{"sluice", "redis"} {
			s, err := h.memoryOnce(name)
			if err != nil {
				return nil, err
			}
			res.samples[name] = append(res.samples[name], s)
			h.progress("memory: %s rep %d/%d: %d keys, RSS %s (%s at start), %.0f bytes/key of RSS, used_memory %.0f bytes/key",
				name, rep+1, reps, h.memKeys, mib(s.rss1), mib(s.rss0),
				float64(s.rss1-s.rss0)/float64(h.memKeys), float64(s.used)/float64(h.memKeys))
		}
	}
	return res, nil
}

// memReps is how many times the memory workload runs: memory varies far
// less than throughput, so three at most.
func (h *harness) memReps() int { return min(h.reps, 3) }

func (h *harness) memoryOnce(name string) (memSample, error) {
	srv, err := h.start(name, nil, nil)
	if err != nil {
		return memSample{}, err
	}
	defer srv.stop()
	var s memSample
	if s.rss0, err = srv.rss(); err != nil {
		return s, err
	}
	if _, err := loadKeys(h.ctx, srv, h.memKeys, keyPrefix, []string{"SET", "", value}, nil); err != nil {
		return s, err
	}
	time.Sleep(settle)
	if s.rss1, err = srv.rss(); err != nil {
		return s, err
	}
	used, err := srv.info("memory", "used_memory")
	if err != nil {
		return s, err
	}
	s.used, err = strconv.ParseInt(used, 10, 64)
	return s, err
}

// gcCycle is one line of Sluice's GODEBUG=gctrace=1 output.
type gcCycle struct {
	phase string        // "load" or "steady": what the harness was doing
	stw   time.Duration // the two stop-the-world phases, summed
	mark  time.Duration // the concurrent mark and sweep-termination, wall time
	pct   int           // the share of CPU spent in GC since the process started
}

// gcLine matches a gctrace line:
//
//	gc 7 @1.234s 3%: 0.021+4.5+0.033 ms clock, 0.04+0.3/2.1/0+0.06 ms cpu, …
var gcLine = regexp.MustCompile(`^gc \d+ @[\d.]+s (\d+)%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock`)

// bigResult is the 10M-key workload.
type bigResult struct {
	keys   int
	cycles []gcCycle
	trace  []string // the gctrace lines as printed
	// Per server: loading rate, RSS before and after, and a GET/SET mix
	// over the keys once loaded.
	loadPerSec map[string]float64
	rss0, rss1 map[string]int64
	steady     map[string]sample
	// Sluice's go_gc_duration_seconds quantiles at the end (0, 0.25, 0.5,
	// 0.75, 1): the runtime's view of the same pauses.
	pauses map[string]float64
}

// runBig loads h.gcKeys keys into a fresh Sluice started with
// GODEBUG=gctrace=1, runs a Zipf GET/SET mix over them, and records every GC
// cycle; then, for comparison, loads the same into a fresh Redis and runs the
// same mix.
func (h *harness) runBig() (*bigResult, error) {
	res := &bigResult{keys: h.gcKeys,
		loadPerSec: map[string]float64{}, rss0: map[string]int64{}, rss1: map[string]int64{},
		steady: map[string]sample{}}
	var mu sync.Mutex
	phase := "load"
	trace := func(line string) {
		m := gcLine.FindStringSubmatch(line)
		if m == nil {
			return
		}
		f := func(s string) time.Duration {
			v, _ := strconv.ParseFloat(s, 64)
			return time.Duration(v * float64(time.Millisecond))
		}
		pct, _ := strconv.Atoi(m[1])
		mu.Lock()
		res.trace = append(res.trace, "["+phase+"] "+line)
		res.cycles = append(res.cycles, gcCycle{phase: phase, stw: f(m[2]) + f(m[4]), mark: f(m[3]), pct: pct})
		mu.Unlock()
	}
	zipf := load.NewZipf(uint64(h.gcKeys), zipfTheta)
	for _, name := range []string{"sluice", "redis"} {
		var env []string
		var stderr func(string)
		if name == "sluice" {
			env, stderr = []string{"GODEBUG=gctrace=1"}, trace
		}
		srv, err := h.start(name, env, stderr)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer srv.stop()
			if res.rss0[name], err = srv.rss(); err != nil {
				return err
			}
			mu.Lock()
			phase = "load"
			mu.Unlock()
			perSec, err := loadKeys(h.ctx, srv, h.gcKeys, keyPrefix, []string{"SET", "", value}, func(done int, perSec float64) {
				rss, _ := srv.rss()
				mu.Lock()
				n := len(res.cycles)
				mu.Unlock()
				gc := ""
				if name == "sluice" {
					gc = fmt.Sprintf(", %d GC cycles so far", n)
				}
				h.say("%s keys: %s loaded %d: %s keys/s, RSS %s%s", short(h.gcKeys), name, done, thousands(perSec), mib(rss), gc)
			})
			if err != nil {
				return err
			}
			res.loadPerSec[name] = perSec
			h.progress("%s keys: %s loaded, %s keys/s", short(h.gcKeys), name, thousands(perSec))
			mu.Lock()
			phase = "steady"
			mu.Unlock()
			drv := &generator{conns: clients, pipeline: 1, source: func(i int) load.Source {
				keys := zipf.Picker(uint64(i) + 1000)
				return &load.Mix{
					PA: 0.9,
					A:  &load.Command{Args: []string{"GET", ""}, Key: 1, Prefix: keyPrefix, Keys: keys},
					B:  &load.Command{Args: []string{"SET", "", value}, Key: 1, Prefix: keyPrefix, Keys: keys},
					R:  rand.New(rand.NewPCG(uint64(i), 91)),
				}
			}}
			smp, err := measure(h.ctx, drv, srv, 0, 2*h.runTime)
			if err != nil {
				return err
			}
			res.steady[name] = smp
			time.Sleep(settle)
			if res.rss1[name], err = srv.rss(); err != nil {
				return err
			}
			if name == "sluice" {
				m, err := srv.metrics()
				if err != nil {
					return err
				}
				res.pauses = map[string]float64{}
				for _, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
					res.pauses[q] = m[`go_gc_duration_seconds{quantile="`+q+`"}`]
				}
			}
			h.progress("%s keys: %s GET/SET 90/10 Zipf, 50 clients: %s ops/s, p50 %s, p99 %s; RSS %s",
				short(h.gcKeys), name, thousands(smp.perSec), ms(smp.p50), ms(smp.p99), mib(res.rss1[name]))
			return nil
		}()
		if err != nil {
			return nil, fmt.Errorf("%s keys, %s: %w", short(h.gcKeys), name, err)
		}
	}
	return res, nil
}

// pauseQuantile is the nearest-rank quantile of the cycles' stop-the-world
// pauses (with few cycles, p99 is the largest).
func pauseQuantile(cycles []gcCycle, q float64, get func(gcCycle) time.Duration) time.Duration {
	if len(cycles) == 0 {
		return 0
	}
	d := make([]time.Duration, len(cycles))
	for i, c := range cycles {
		d[i] = get(c)
	}
	slices.Sort(d)
	rank := int(q*float64(len(d)) + 0.999999)
	return d[min(max(rank, 1), len(d))-1]
}
