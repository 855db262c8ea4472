package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedb/sluice/bench/internal/load"
)

// sample is one measured run of one side of a workload.
type sample struct {
	perSec   float64
	p50, p99 time.Duration
	ops      float64
	// Server-side cost over the run: CPU time of the server process, and,
	// for Sluice, heap allocations and completed GC cycles (from /metrics);
	// mallocs and gcs are -1 for Redis.
	cpu          time.Duration
	mallocs, gcs float64
	// switches is how many times the server's threads were switched out
	// (voluntary and not), a measure of its wake-ups.
	switches float64
}

// switchesPerOp is the server's context switches per command.
func (s sample) switchesPerOp() float64 {
	if s.ops == 0 {
		return 0
	}
	return s.switches / s.ops
}

// cpuPerOp is the server's CPU time per command.
func (s sample) cpuPerOp() time.Duration {
	if s.ops == 0 {
		return 0
	}
	return time.Duration(float64(s.cpu) / s.ops)
}

// allocsPerOp is Sluice's heap allocations per command, -1 for Redis.
func (s sample) allocsPerOp() float64 {
	if s.mallocs < 0 || s.ops == 0 {
		return -1
	}
	return s.mallocs / s.ops
}

// driver produces load against one server. size is how much work one run
// does: a request count for redis-benchmark, which cannot run for a given
// time; calibrate picks it.
type driver interface {
	// calibrate does a short run, as a warm-up, and returns the size of a
	// run that lasts about d.
	calibrate(ctx context.Context, srv *server, d time.Duration) (size int, err error)
	run(ctx context.Context, srv *server, size int, d time.Duration) (perSec float64, p50, p99 time.Duration, ops float64, err error)
	// name is the driver's name for the report.
	name() string
}

// measure runs drv once against srv and adds the server's costs.
func measure(ctx context.Context, drv driver, srv *server, size int, d time.Duration) (sample, error) {
	before, err := srv.metrics()
	if err != nil {
		return sample{}, err
	}
	cpu0, err := srv.cpu()
	if err != nil {
		return sample{}, err
	}
	sw0 := srv.switches()
	var s sample
	s.perSec, s.p50, s.p99, s.ops, err = drv.run(ctx, srv, size, d)
	if err != nil {
		return sample{}, err
	}
	if err := srv.alive(); err != nil {
		return sample{}, err
	}
	cpu1, err := srv.cpu()
	if err != nil {
		return sample{}, err
	}
	s.switches = float64(srv.switches() - sw0)
	after, err := srv.metrics()
	if err != nil {
		return sample{}, err
	}
	s.cpu = cpu1 - cpu0
	s.mallocs, s.gcs = -1, -1
	if before != nil {
		s.mallocs = after["go_memstats_mallocs_total"] - before["go_memstats_mallocs_total"]
		s.gcs = after["go_gc_duration_seconds_count"] - before["go_gc_duration_seconds_count"]
	}
	return s, nil
}

// redisBenchmark drives a server with redis-benchmark: clients connections,
// pipeline depth, and args (a -t test with its options, or a command with
// __rand_int__ in its key).
type redisBenchmark struct {
	clients, pipeline int
	args              []string
}

func (r *redisBenchmark) name() string { return "redis-benchmark" }

func (r *redisBenchmark) calibrate(ctx context.Context, srv *server, d time.Duration) (int, error) {
	n := 5000 * r.pipeline
	for {
		start := time.Now()
		perSec, _, _, _, err := r.run(ctx, srv, n, 0)
		if err != nil {
			return 0, err
		}
		if time.Since(start) >= 200*time.Millisecond || n >= 1<<24 {
			size := int(perSec * d.Seconds())
			return max(size/1000*1000, 1000), nil
		}
		n *= 4
	}
}

func (r *redisBenchmark) run(ctx context.Context, srv *server, n int, _ time.Duration) (float64, time.Duration, time.Duration, float64, error) {
	_, port, _ := strings.Cut(srv.addr, ":")
	args := []string{"-h", "127.0.0.1", "-p", port,
		"-c", strconv.Itoa(r.clients), "-P", strconv.Itoa(r.pipeline),
		"-n", strconv.Itoa(n), "--csv"}
	cmd := exec.CommandContext(ctx, "redis-benchmark", append(args, r.args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("redis-benchmark %s: %v: %s", strings.Join(r.args, " "), err, errOut.String())
	}
	if strings.Contains(errOut.String(), "Error") || strings.Contains(out.String(), "Error") {
		return 0, 0, 0, 0, fmt.Errorf("redis-benchmark %s: %s%s", strings.Join(r.args, " "), out.String(), errOut.String())
	}
	// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	rows, err := csv.NewReader(strings.NewReader(out.String()[strings.Index(out.String(), `"test"`):])).ReadAll()
	if err != nil || len(rows) != 2 || len(rows[1]) < 7 {
		return 0, 0, 0, 0, fmt.Errorf("redis-benchmark printed %q", out.String())
	}
	row := rows[1]
	perSec, err1 := strconv.ParseFloat(row[1], 64)
	p50, err2 := strconv.ParseFloat(row[4], 64)
	p99, err3 := strconv.ParseFloat(row[6], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, 0, fmt.Errorf("redis-benchmark printed %q", out.String())
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	return perSec, ms(p50), ms(p99), float64(n), nil
}

// generator drives a server with the harness's own load generator.
type generator struct {
	conns, pipeline int
	source          func(conn int) load.Source
}

func (g *generator) name() string { return "bench/internal/load" }

func (g *generator) calibrate(ctx context.Context, srv *server, d time.Duration) (int, error) {
	_, _, _, _, err := g.run(ctx, srv, 0, min(d/4, time.Second))
	return 0, err
}

func (g *generator) run(ctx context.Context, srv *server, _ int, d time.Duration) (float64, time.Duration, time.Duration, float64, error) {
	res, err := load.Run(ctx, load.Config{
		Addr: srv.addr, Conns: g.conns, Pipeline: g.pipeline, Duration: d, Source: g.source,
	})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if res.Errors > 0 {
		return 0, 0, 0, 0, fmt.Errorf("%d of %d replies were errors, the first: %s", res.Errors, res.Ops, res.FirstError)
	}
	return res.PerSec(), res.Latency.Quantile(0.50), res.Latency.Quantile(0.99), float64(res.Ops), nil
}

// loadKeys writes n keys, prefix followed by 0 … n-1 in load.KeyDigits
// digits, with the command args (args[1] is replaced by the key), over 8
// connections pipelining 64 deep; progress, if not nil, is called after
// each million keys.
func loadKeys(ctx context.Context, srv *server, n int, prefix string, args []string, progress func(done int, perSec float64)) (perSec float64, err error) {
	const conns, step = 8, 1_000_000
	start := time.Now()
	for from := 0; from < n; from += step {
		count := min(step, n-from)
		res, err := load.Run(ctx, load.Config{
			Addr: srv.addr, Conns: conns, Pipeline: 64, Requests: count,
			Source: func(i int) load.Source {
				first, _ := load.Share(count, conns, i)
				return &load.Command{Args: args, Key: 1, Prefix: prefix, Keys: load.Sequence(uint64(from + first))}
			},
		})
		if err != nil {
			return 0, err
		}
		if res.Errors > 0 {
			return 0, fmt.Errorf("loading %s: %d errors, the first: %s", srv.name, res.Errors, res.FirstError)
		}
		if progress != nil {
			progress(from+count, float64(from+count)/time.Since(start).Seconds())
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
