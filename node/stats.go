package node

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stats are the node's counters, kept with atomics beside what they count.
// INFO and the Prometheus collector read the same numbers.
type stats struct {
	totalConns    atomic.Int64
	rejectedConns atomic.Int64
	hits          stripedCounter
	misses        stripedCounter
	errorReplies  atomic.Int64
	forwarded     atomic.Int64 // commands run on their owner for a client here
	forwardErrors atomic.Int64

	perCmd []*cmdStats // by Command.id; built once, read without locks

	errMu  sync.Mutex
	errors map[string]int64 // error replies by prefix (errorstats)

	peak atomic.Int64 // the most memory INFO has seen in use

	opsMu   sync.Mutex
	opsAt   time.Time // when opsSeen was sampled
	opsSeen int64     // total commands at opsAt
	opsRate int64     // commands per second over the last sample
}

// peakMemory records used and returns the peak seen so far.
func (s *stats) peakMemory(used int64) int64 {
	for {
		p := s.peak.Load()
		if used <= p {
			return p
		}
		if s.peak.CompareAndSwap(p, used) {
			return used
		}
	}
}

// opsPerSec is the command rate between this call and the previous one (at
// least a second apart), as INFO's instantaneous_ops_per_sec.
func (s *stats) opsPerSec() int64 {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	now, total := time.Now(), s.commands()
	if d := now.Sub(s.opsAt); d >= time.Second {
		if !s.opsAt.IsZero() {
			s.opsRate = int64(float64(total-s.opsSeen) / d.Seconds())
		}
		s.opsAt, s.opsSeen = now, total
	}
	return s.opsRate
}

type cmdStats struct {
	calls    atomic.Int64
	usec     atomic.Int64
	rejected atomic.Int64
	failed   atomic.Int64
	latency  prometheus.Histogram // exported only once the command has run
}

// latencyBuckets cover a command's time from a microsecond to a second.
var latencyBuckets = []float64{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.1, 1}

func (s *stats) init() {
	s.errors = make(map[string]int64)
	s.perCmd = make([]*cmdStats, len(commandList))
	add := func(c *Command) {
		s.perCmd[c.id] = &cmdStats{latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "sluice_command_duration_seconds",
			Help:        "Time to run a command, by command.",
			Buckets:     latencyBuckets,
			ConstLabels: prometheus.Labels{"command": c.fullName},
		})}
	}
	for _, c := range commands {
		add(c)
		for _, sub := range c.sub {
			add(sub)
		}
	}
}

// timingSample is how many commands share one timing: INFO's usec and the
// latency histograms come from one command in timingSample (usec scaled up),
// while call counts are exact.
const timingSample = 8

// record accounts for a command that ran; d is its duration when timed.
func (s *stats) record(cmd *Command, d time.Duration, timed, failed bool) {
	cs := s.perCmd[cmd.id]
	cs.calls.Add(1)
	if timed {
		cs.usec.Add(d.Microseconds() * timingSample)
		cs.latency.Observe(d.Seconds())
	}
	if failed {
		cs.failed.Add(1)
	}
}

// recordBatch accounts for calls of cmd that ran in one batch (FastBatch);
// took is their share of the batch's time and each the batch's time per
// operation, when timed.
func (s *stats) recordBatch(cmd *Command, calls int64, took, each time.Duration, timed bool) {
	cs := s.perCmd[cmd.id]
	cs.calls.Add(calls)
	if timed {
		cs.usec.Add(took.Microseconds() * timingSample)
		cs.latency.Observe(each.Seconds())
	}
}

// commands is the number of commands processed, the sum of the per-command
// counts (one shared counter more on every command would cost contention).
func (s *stats) commands() int64 {
	var total int64
	for _, cs := range s.perCmd {
		total += cs.calls.Load()
	}
	return total
}

// stripedCounter is a counter that many goroutines add to without sharing a
// cache line: each adds to the stripe of its client, readers sum them.
type stripedCounter struct {
	stripes [8]struct {
		n atomic.Int64
		_ [56]byte // one stripe per cache line
	}
}

// Add adds d to the stripe of client id.
func (c *stripedCounter) Add(id int64, d int64) { c.stripes[id&7].n.Add(d) }

// Load returns the total.
func (c *stripedCounter) Load() int64 {
	var t int64
	for i := range c.stripes {
		t += c.stripes[i].n.Load()
	}
	return t
}

func (c *stripedCounter) reset() {
	for i := range c.stripes {
		c.stripes[i].n.Store(0)
	}
}

// reject accounts for a command refused before it ran.
func (s *stats) reject(cmd *Command) {
	s.perCmd[cmd.id].rejected.Add(1)
}

// reset zeroes the counters (CONFIG RESETSTAT).
func (s *stats) reset() {
	for _, cs := range s.perCmd {
		cs.calls.Store(0)
		cs.usec.Store(0)
		cs.rejected.Store(0)
		cs.failed.Store(0)
	}
	s.totalConns.Store(0)
	s.rejectedConns.Store(0)
	s.hits.reset()
	s.misses.reset()
	s.errorReplies.Store(0)
	s.errMu.Lock()
	clear(s.errors)
	s.errMu.Unlock()
}

// errorReply counts an error reply by its prefix, for INFO errorstats.
func (s *stats) errorReply(msg string) {
	s.errorReplies.Add(1)
	prefix, _, _ := strings.Cut(msg, " ")
	s.errMu.Lock()
	if _, ok := s.errors[prefix]; ok || len(s.errors) < 128 {
		s.errors[prefix]++
	}
	s.errMu.Unlock()
}
