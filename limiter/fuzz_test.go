package limiter

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// admission is a request the limiter let through.
type admission struct{ now, cost int64 }

// checkWindow asserts the GCRA guarantee: over every time window [a, b] the
// admitted cost is at most capacity + (b-a)/interval. It holds whatever the
// order of the calls, backward clock steps included: each admission moves
// the TAT at least cost*interval past max(now, TAT), the TAT never moves
// back, and an admission at time t leaves it at most t + tolerance. Windows
// bounded by admission times are the tightest, so only those are checked.
func checkWindow(t *testing.T, l Limit, adm []admission) {
	t.Helper()
	slices.SortFunc(adm, func(x, y admission) int { return compare(x.now, y.now) })
	for i := range adm {
		var sum int64
		for j := i; j < len(adm); j++ {
			sum += adm[j].cost
			window := adm[j].now - adm[i].now
			if bound := l.capacity + window/l.interval; sum > bound {
				t.Fatalf("admitted %d over %d ns (from t0%+d), bound %d (interval %d, capacity %d)",
					sum, window, adm[i].now-t0, bound, l.interval, l.capacity)
			}
		}
	}
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkDecision asserts what every decision must satisfy.
func checkDecision(t *testing.T, l Limit, s State, cost, now int64, d Decision) {
	t.Helper()
	switch {
	case d.Remaining < 0 || d.Remaining > l.capacity,
		d.ResetAfter < 0,
		d.RetryAfter < -1,
		!d.Limited && d.RetryAfter != -1,
		d.Write && (d.Limited || cost <= 0 || d.Next.TAT <= now || d.Next.TAT < s.TAT),
		!d.Write && d.Next != s:
		t.Fatalf("Decide(TAT %d, cost %d, now %d) with interval %d capacity %d: %+v",
			s.TAT, cost, now, l.interval, l.capacity, d)
	}
}

// Random parameters and request sequences, with the clock stepping back now
// and then, never admit more than the GCRA bound.
func TestWindowBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	intervals := []int64{1, 7, 999, 1 * us, 333333333, 1 * s, 60 * s}
	for range 300 {
		interval := intervals[rng.IntN(len(intervals))]
		l, err := NewLimit(interval, 1+rng.Int64N(20))
		if err != nil {
			t.Fatal(err)
		}
		var st State
		var adm []admission
		now := t0
		for range 200 {
			switch rng.IntN(10) {
			case 0:
				now -= rng.Int64N(5 * interval) // the clock steps back
			case 1, 2:
				// a burst at one instant
			default:
				now += rng.Int64N(2 * interval)
			}
			cost := rng.Int64N(l.capacity + 3)
			d := l.Decide(st, cost, now)
			checkDecision(t, l, st, cost, now, d)
			if !d.Limited && cost > 0 {
				adm = append(adm, admission{now, cost})
			}
			if d.Write {
				st = d.Next
			}
		}
		checkWindow(t, l, adm)
	}
}

// FuzzWindow drives the core with parameters and a call sequence read from
// the input, and checks each decision and the GCRA bound.
func FuzzWindow(f *testing.F) {
	f.Add(int64(1*s), int64(5), []byte{1, 2, 3, 0, 0, 0, 200, 7, 1, 1})
	f.Add(int64(1), int64(1), []byte{0, 0, 0, 255, 255, 128, 3})
	f.Add(int64(333333333), int64(3), []byte{9, 9, 9, 9, 140, 0, 0, 1})
	f.Fuzz(func(t *testing.T, interval, capacity int64, ops []byte) {
		// Up to 2^40 tokens and 300 calls keep the sums of checkWindow and the
		// times within int64.
		l, err := NewLimit(interval, int64(uint64(capacity)%(1<<40))+1)
		if err != nil {
			return
		}
		ops = ops[:min(len(ops), 300)]
		unit := min(l.interval/4+1, 1<<40)
		var st State
		var adm []admission
		now := t0
		// Each byte is a call: the high bits pick the time step (back, none,
		// forward), the low bits the cost (15: an impossible one).
		for _, op := range ops {
			switch step := int64(op >> 4); {
			case step < 3:
				now -= step * unit
			case step < 6:
				// same instant
			default:
				now += (step - 5) * unit
			}
			cost := int64(op & 0xf)
			if cost == 0xf {
				cost = math.MaxInt64
			}
			d := l.Decide(st, cost, now)
			checkDecision(t, l, st, cost, now, d)
			if !d.Limited && cost > 0 {
				adm = append(adm, admission{now, cost})
			}
			if d.Write {
				st = d.Next
			}
		}
		checkWindow(t, l, adm)
	})
}

// Decode never panics, and what it accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(State{t0}.Append(nil))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(st.Append(nil), b) {
			t.Fatalf("Decode(%x) = %d, which encodes as %x", b, st.TAT, st.Append(nil))
		}
	})
}

// The integer parsers agree with their references: Rust's i64 parse is
// strconv.ParseInt in base 10 (a sign, digits); Redis's string2ll accepts
// exactly the canonical decimal form of an int64.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "+7", "007", "", "-", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "1e3", " 1", "1_0", "18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := strconv.ParseInt(s, 10, 64)
		if got, ok := parseCellInt([]byte(s)); ok != (err == nil) || ok && got != want {
			t.Errorf("parseCellInt(%q) = %d, %v; strconv: %d, %v", s, got, ok, want, err)
		}
		canonical := err == nil && strconv.FormatInt(want, 10) == s
		if got, ok := parseRedisInt([]byte(s)); ok != canonical || ok && got != want {
			t.Errorf("parseRedisInt(%q) = %d, %v; want %d, %v", s, got, ok, want, canonical)
		}
	})
}

// checkReply asserts what every reply must satisfy.
func checkReply(t *testing.T, r Reply, d Decision) {
	t.Helper()
	switch {
	case r.Limit < 1,
		r.Remaining < 0 || r.Remaining > r.Limit,
		r.RetryAfter < -1,
		!r.Limited && r.RetryAfter != -1,
		r.ResetAfter < 0,
		r.Limited != d.Limited:
		t.Fatalf("reply %v for decision %+v", r.Ints(), d)
	}
}

// ParseThrottle never panics, and what it accepts answers sanely from any
// state at any time.
func FuzzParseThrottle(f *testing.F) {
	f.Add("15", "30", "60", "1", uint8(4), int64(0), int64(t0))
	f.Add("0", "2000000", "1", "", uint8(3), int64(t0+s), int64(t0))
	f.Add("+9", "-1", "0", "7", uint8(4), int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, a, b, c, d string, n uint8, tat, now int64) {
		argv := [][]byte{[]byte(a), []byte(b), []byte(c), []byte(d)}[:min(int(n)%6, 4)]
		p, err := ParseThrottle(argv)
		if err != nil {
			if _, ok := err.(Error); !ok || len(err.Error()) == 0 {
				t.Fatalf("error %T %q", err, err)
			}
			return
		}
		r, dec := p.Apply(State{tat}, now)
		checkReply(t, r, dec)
	})
}

// ParseTake never panics, and what it accepts answers sanely.
func FuzzParseTake(f *testing.F) {
	f.Add("LIMIT 10 PERIOD 1000 BURST 20 COST 3", int64(0), int64(t0))
	f.Add("limit 1 period 1 cost 0", int64(t0+s), int64(t0))
	f.Add("LIMIT 1000000 PERIOD 1 BURST 9223372036854775807", int64(math.MaxInt64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, line string, tat, now int64) {
		p, err := ParseTake(args(line))
		if err != nil {
			if _, ok := err.(Error); !ok || len(err.Error()) == 0 {
				t.Fatalf("error %T %q", err, err)
			}
			return
		}
		r, d := p.Apply(State{tat}, now)
		checkReply(t, r, d)
		if r.Limited && r.RetryAfter < 0 && now < math.MaxInt64-p.limit.tolerance {
			t.Fatalf("RL.TAKE %s refused for ever: %v", line, r.Ints())
		}
	})
}
