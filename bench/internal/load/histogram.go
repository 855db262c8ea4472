package load

import (
	"math/bits"
	"time"
)

// subBuckets is how many buckets split each power of two, so a recorded
// latency is known to within 1/subBuckets (1.6%) of its value, as an HDR
// histogram with two significant digits.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	// maxExp covers latencies up to 2^40 ns (18 minutes).
	maxExp = 40 - subBits - 1
)

// Histogram counts latencies in log-linear buckets. It is not safe for
// concurrent use: each connection keeps its own and Run merges them.
type Histogram struct {
	counts [(maxExp + 2) * subBuckets]uint64
	total  uint64
	max    time.Duration
}

func bucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < subBuckets {
		return int(v)
	}
	// v>>exp is in [subBuckets, 2*subBuckets): the top subBits+1 bits.
	exp := bits.Len64(v) - subBits - 1
	if exp > maxExp {
		return (maxExp+2)*subBuckets - 1
	}
	return (exp+1)*subBuckets + int(v>>exp) - subBuckets
}

// upper is the largest latency bucket i holds.
func upper(i int) time.Duration {
	if i < subBuckets {
		return time.Duration(i)
	}
	exp := i/subBuckets - 1
	sub := i%subBuckets + subBuckets
	return time.Duration((uint64(sub+1) << exp) - 1)
}

// Record counts one latency.
func (h *Histogram) Record(d time.Duration) {
	h.counts[bucket(d)]++
	h.total++
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Count is how many latencies were recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile is the latency below which a fraction q of the recorded ones
// fall (nearest rank), reported as its bucket's upper bound.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(upper(i), h.max)
		}
	}
	return h.max
}
