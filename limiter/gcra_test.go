package limiter

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestNewLimit(t *testing.T) {
	cases := []struct {
		interval, capacity int64
		want               error
	}{
		{1, 1, nil},
		{math.MaxInt64, 1, nil},
		{1, math.MaxInt64, nil},
		{0, 1, ErrLimit},
		{1, 0, ErrLimit},
		{-1, 5, ErrLimit},
		{math.MaxInt64, 2, ErrLimitRange},
		{1 << 32, 1 << 31, ErrLimitRange},
	}
	for _, c := range cases {
		if _, err := NewLimit(c.interval, c.capacity); !errors.Is(err, c.want) {
			t.Errorf("NewLimit(%d, %d) = %v, want %v", c.interval, c.capacity, err, c.want)
		}
	}
}

func TestDecide(t *testing.T) {
	l, _ := NewLimit(1*s, 5) // tolerance 5 s
	cases := []struct {
		name     string
		tat, now int64
		cost     int64
		want     Decision
	}{
		{"absent record", 0, t0, 1,
			Decision{Remaining: 4, RetryAfter: -1, ResetAfter: 1 * s, Next: State{t0 + 1*s}, Write: true}},
		{"TAT in the past is a full bucket", t0 - 7*s, t0, 2,
			Decision{Remaining: 3, RetryAfter: -1, ResetAfter: 2 * s, Next: State{t0 + 2*s}, Write: true}},
		{"read leaves the state alone", t0 + 2*s, t0, 0,
			Decision{Remaining: 3, RetryAfter: -1, ResetAfter: 2 * s, Next: State{t0 + 2*s}}},
		{"negative cost reads", t0 + 2*s, t0, -3,
			Decision{Remaining: 3, RetryAfter: -1, ResetAfter: 2 * s, Next: State{t0 + 2*s}}},
		{"exactly the tolerance", t0 + 2*s, t0, 3,
			Decision{Remaining: 0, RetryAfter: -1, ResetAfter: 5 * s, Next: State{t0 + 5*s}, Write: true}},
		{"one nanosecond over", t0 + 2*s + 1, t0, 3,
			Decision{Limited: true, Remaining: 2, RetryAfter: 1, ResetAfter: 2*s + 1, Next: State{t0 + 2*s + 1}}},
		{"cost above capacity", t0 + 2*s, t0, 6,
			Decision{Limited: true, Remaining: 3, RetryAfter: -1, ResetAfter: 2 * s, Next: State{t0 + 2*s}}},
		{"huge cost", 0, t0, math.MaxInt64,
			Decision{Limited: true, Remaining: 5, RetryAfter: -1, Next: State{0}}},
		// The clock stepped back past the tolerance: even reads are refused.
		{"read after a step back", t0 + 9*s, t0, 0,
			Decision{Limited: true, RetryAfter: 4 * s, ResetAfter: 9 * s, Next: State{t0 + 9*s}}},
		// tat-now overflows int64: saturated, so refused.
		{"TAT far beyond now", math.MaxInt64, math.MinInt64, 1,
			Decision{Limited: true, RetryAfter: math.MaxInt64 - 4*s, ResetAfter: math.MaxInt64, Next: State{math.MaxInt64}}},
		// The new TAT would pass the end of int64 time: refused, not wrapped.
		{"end of time", 0, math.MaxInt64 - 1*s/2, 1,
			Decision{Limited: true, Remaining: 5, RetryAfter: -1, Next: State{0}}},
		{"end of time, read", 0, math.MaxInt64 - 1*s/2, 0,
			Decision{Remaining: 5, RetryAfter: -1, Next: State{0}}},
	}
	for _, c := range cases {
		if got := l.Decide(State{c.tat}, c.cost, c.now); got != c.want {
			t.Errorf("%s: Decide(TAT %d, cost %d, now %d) =\n  %+v, want\n  %+v", c.name, c.tat, c.cost, c.now, got, c.want)
		}
	}
	var zero Limit
	if d := zero.Decide(State{}, 1, t0); !d.Limited || d.Write {
		t.Errorf("the zero Limit admitted a request: %+v", d)
	}
}

// The record expires exactly when the bucket is full again: a read one
// nanosecond before still sees the tokens held back, a read at the TAT sees a
// full bucket, as an absent record would.
func TestRecordExpiry(t *testing.T) {
	l, _ := NewLimit(100*ms, 10)
	d := l.Decide(State{}, 3, t0)
	if d.Next.TAT != t0+300*ms || d.Next.ExpireAtMillis() != (t0+300*ms)/ms {
		t.Fatalf("TAT %d expiry %d ms, want t0+300 ms", d.Next.TAT, d.Next.ExpireAtMillis())
	}
	if before := l.Decide(d.Next, 0, d.Next.TAT-1); before.Remaining != 9 || before.ResetAfter != 1 {
		t.Errorf("1 ns before the TAT: %+v, want remaining 9, reset 1 ns", before)
	}
	at := l.Decide(d.Next, 0, d.Next.TAT)
	if absent := l.Decide(State{}, 0, d.Next.TAT); at != (Decision{Remaining: 10, RetryAfter: -1, Next: d.Next}) ||
		absent.Remaining != at.Remaining || absent.ResetAfter != at.ResetAfter {
		t.Errorf("at the TAT: %+v; absent: %+v; want a full bucket", at, absent)
	}

	cases := []struct{ tat, want int64 }{
		{t0 + 300*ms, (t0 + 300*ms) / ms},
		{t0 + 300*ms + 1, (t0+300*ms)/ms + 1}, // rounded up, never early
		{1_500_000_001, 1501},
		{2_000_000, 2},
		{1, 1},
		{0, 1}, // never 0, which the store reads as no expiry
		{-5 * ms, 1},
		{math.MaxInt64, math.MaxInt64/ms + 1},
	}
	for _, c := range cases {
		if got := (State{c.tat}).ExpireAtMillis(); got != c.want {
			t.Errorf("ExpireAtMillis(TAT %d) = %d, want %d", c.tat, got, c.want)
		}
	}
}

func TestStateEncoding(t *testing.T) {
	for _, tat := range []int64{0, 1, -1, t0, t0 + 123456789, math.MaxInt64, math.MinInt64} {
		b := State{tat}.Append(nil)
		if len(b) != StateSize {
			t.Fatalf("encoded %d bytes, want %d", len(b), StateSize)
		}
		got, err := Decode(b)
		if err != nil || got.TAT != tat {
			t.Errorf("Decode(Append(%d)) = %d, %v", tat, got.TAT, err)
		}
	}
	// Appending keeps what dst held.
	if b := (State{1}).Append([]byte("x")); !bytes.Equal(b, []byte{'x', 1, 1, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("Append to a prefix: %v", b)
	}
	bad := [][]byte{
		nil,
		{},
		{1},
		{1, 0, 0, 0, 0, 0, 0, 0},
		{1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 0, 0, 0, 0, 0},
		{2, 0, 0, 0, 0, 0, 0, 0, 0},
		[]byte("170000000"),
	}
	for _, b := range bad {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%v) = %v, want ErrCorrupt", b, err)
		}
	}
}

// The hot path allocates nothing: parsing, decoding, deciding, encoding.
func TestNoAllocations(t *testing.T) {
	cl := args("15 30 60 1")
	rl := args("LIMIT 100 PERIOD 1000 BURST 200 COST 1")
	record := State{t0}.Append(nil)
	now := t0
	allocs := testing.AllocsPerRun(100, func() {
		now += ms
		p, err := ParseThrottle(cl)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Decode(record)
		if err != nil {
			t.Fatal(err)
		}
		_, d := p.Apply(st, now)
		var buf [StateSize]byte
		record = append(record[:0], d.Next.Append(buf[:0])...)
		q, err := ParseTake(rl)
		if err != nil {
			t.Fatal(err)
		}
		q.Apply(st, now)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decision, want 0", allocs)
	}
}
