// Package load is the benchmark harness's own load generator, for workloads
// redis-benchmark cannot express (a Zipf key distribution, a GET/SET mix,
// loading an exact key range): many connections, each sending batches of
// pipelined RESP requests and timing every reply.
//
// Each connection works in lockstep, as redis-benchmark's clients do: it
// writes a batch of Pipeline requests, reads all of their replies, and
// repeats. A reply's latency runs from the write of its batch to the read
// that completed it. Replies are measured, not decoded, so the generator's
// own cost stays small next to the server's.
package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Config is one run of the generator.
type Config struct {
	Addr     string
	Conns    int
	Pipeline int
	// Duration bounds the run; a connection stops after the batch in
	// flight when it ends.
	Duration time.Duration
	// Requests, when positive, is how many requests the connections send
	// in all before they stop, whatever Duration says (for loading a key
	// range); connection i sends Share(Requests, Conns, i) of them.
	Requests int
	// Source makes connection i's request source.
	Source func(i int) Source
}

// Result is what a run measured.
type Result struct {
	Ops     uint64        // replies received
	Errors  uint64        // of which error replies
	Elapsed time.Duration // from the start to the last connection's last reply
	// FirstError is the text of the first error reply, if any.
	FirstError string
	Latency    Histogram
}

// PerSec is the throughput in replies per second.
func (r *Result) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Share splits total requests among conns connections: connection i sends
// count of them, the ones numbered from first on.
func Share(total, conns, i int) (first, count int) {
	count = total / conns
	extra := total % conns
	first = i*count + min(i, extra)
	if i < extra {
		count++
	}
	return first, count
}

// Run connects cfg.Conns connections, then drives them all at once until
// cfg.Duration passes or they have sent cfg.Requests.
func Run(parent context.Context, cfg Config) (*Result, error) {
	if cfg.Conns < 1 || cfg.Pipeline < 1 {
		return nil, errors.New("load: Conns and Pipeline must be positive")
	}
	conns := make([]net.Conn, cfg.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := net.DialTimeout("tcp", cfg.Addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	results := make([]worker, cfg.Conns)
	var wg sync.WaitGroup
	for i := range conns {
		w := &results[i]
		w.nc, w.src, w.pipeline, w.left = conns[i], cfg.Source(i), cfg.Pipeline, -1
		if cfg.Requests > 0 {
			_, w.left = Share(cfg.Requests, cfg.Conns, i)
		}
		wg.Go(func() {
			w.run(ctx, deadline)
			if w.err != nil {
				cancel()
			}
		})
	}
	// A blocked read or write ends with the context.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetDeadline(time.Now())
		}
	})
	wg.Wait()
	stop()

	res := &Result{}
	var errs []error
	for i := range results {
		w := &results[i]
		if w.err != nil {
			errs = append(errs, fmt.Errorf("connection %d: %w", i, w.err))
		}
		res.Ops += w.ops
		res.Errors += w.errors
		if res.FirstError == "" {
			res.FirstError = w.firstError
		}
		res.Latency.Merge(&w.hist)
		res.Elapsed = max(res.Elapsed, w.end.Sub(start))
	}
	if err := parent.Err(); err != nil {
		return res, err
	}
	return res, errors.Join(errs...)
}

// worker is one connection's loop and what it counted.
type worker struct {
	nc       net.Conn
	src      Source
	pipeline int
	left     int // requests still to send; -1 for no limit

	ops, errors uint64
	firstError  string
	hist        Histogram
	end         time.Time
	err         error
}

func (w *worker) run(ctx context.Context, deadline time.Time) {
	out := make([]byte, 0, 64<<10)
	in := make([]byte, 64<<10)
	for w.left != 0 && ctx.Err() == nil {
		batch := w.pipeline
		if w.left > 0 {
			batch = min(batch, w.left)
			w.left -= batch
		}
		out = out[:0]
		for range batch {
			out = w.src.Append(out)
		}
		sent := time.Now()
		if _, err := w.nc.Write(out); err != nil {
			w.err = err
			return
		}
		var r, n int // parsed and filled bytes of in
		for batch > 0 {
			if r == n {
				r, n = 0, 0
			} else if n == len(in) {
				if r > 0 {
					n = copy(in, in[r:n])
					r = 0
				} else {
					in = append(in, make([]byte, len(in))...)
				}
			}
			m, err := w.nc.Read(in[n:])
			if err != nil {
				w.err = err
				return
			}
			n += m
			got := time.Since(sent)
			for batch > 0 {
				size, isErr, err := scan(in[r:n])
				if err != nil {
					w.err = err
					return
				}
				if size == 0 {
					break
				}
				if isErr {
					w.errors++
					if w.firstError == "" {
						w.firstError = string(in[r : r+size-2])
					}
				}
				r += size
				w.ops++
				w.hist.Record(got)
				batch--
			}
		}
		w.end = time.Now()
		if w.left < 0 && !w.end.Before(deadline) {
			return
		}
	}
}
