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
	hits          atomic.Int64
	misses        atomic.Int64
	commands      atomic.Int64
	errorReplies  atomic.Int64
	forwarded     atomic.Int64 // commands run on their owner for a client here
	forwardErrors atomic.Int64

	perCmd map[*Command]*cmdStats // built once; read without locks

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
	now, total := time.Now(), s.commands.Load()
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
	s.perCmd = make(map[*Command]*cmdStats)
	add := func(c *Command) {
		s.perCmd[c] = &cmdStats{latency: prometheus.NewHistogram(prometheus.HistogramOpts{
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
	cs := s.perCmd[cmd]
	cs.calls.Add(1)
	if timed {
		cs.usec.Add(d.Microseconds() * timingSample)
		cs.latency.Observe(d.Seconds())
	}
	s.commands.Add(1)
	if failed {
		cs.failed.Add(1)
	}
}

// reject accounts for a command refused before it ran.
func (s *stats) reject(cmd *Command) {
	s.perCmd[cmd].rejected.Add(1)
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
	s.hits.Store(0)
	s.misses.Store(0)
	s.commands.Store(0)
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
