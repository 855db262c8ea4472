package limiter

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// Durations and a realistic epoch for the tables, in nanoseconds.
const (
	us = int64(1e3)
	ms = int64(1e6)
	s  = int64(1e9)
	t0 = 1_700_000_000 * s
)

// step is one call of a command in a sequence: its arguments after the key,
// the time, and the reply expected.
type step struct {
	args string
	now  int64
	want [5]int64
}

// args splits a space-separated argument list into the [][]byte the node
// passes.
func args(line string) [][]byte {
	var out [][]byte
	for _, f := range strings.Fields(line) {
		out = append(out, []byte(f))
	}
	return out
}

// runThrottle plays steps against one bucket, storing the state whenever a
// decision asks for it, through the encoding, as the node does.
func runThrottle(t *testing.T, steps []step) {
	t.Helper()
	var record []byte
	for i, st := range steps {
		p, err := ParseThrottle(args(st.args))
		if err != nil {
			t.Fatalf("step %d: CL.THROTTLE k %s: %v", i, st.args, err)
		}
		var state State
		if record != nil {
			if state, err = Decode(record); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		r, d := p.Apply(state, st.now)
		if got := r.Ints(); got != st.want {
			t.Errorf("step %d: CL.THROTTLE k %s at t0%+dns = %v, want %v", i, st.args, st.now-t0, got, st.want)
		}
		if d.Write {
			record = d.Next.Append(record[:0])
		}
	}
}

// sequence is a named list of steps played against one bucket.
type sequence struct {
	name  string
	steps []step
}

// throttleSequences are CL.THROTTLE call sequences with their exact replies:
// redis-cell's README example and tests, and cases derived by hand.
// TestThrottleSequences plays them against Throttle, TestScriptSequences
// against gcra.lua.
func throttleSequences() []sequence {
	// redis-cell's README: 30 per 60 s, so T = 2 s; max_burst 15, so limit 16
	// and tolerance 32 s. "CL.THROTTLE user123 15 30 60" → 0, 16, 15, -1, 2.
	readme := []step{{"15 30 60", t0, [5]int64{0, 16, 15, -1, 2}}}
	// Each further call at the same instant takes one more token: the TAT
	// moves 2 s later and remaining is (32 s - reset)/2 s.
	for n := int64(2); n <= 16; n++ {
		readme = append(readme, step{"15 30 60", t0, [5]int64{0, 16, 16 - n, -1, 2 * n}})
	}
	// The 17th finds the TAT 32 s ahead; 32+2 > 32, so it is limited, to
	// retry after 32+2-32 = 2 s.
	readme = append(readme, step{"15 30 60 1", t0, [5]int64{1, 16, 0, 2, 32}})

	var unit []step
	for _, c := range cellUnitCases {
		limited := int64(0)
		if c.limited {
			limited = 1
		}
		unit = append(unit, step{fmt.Sprintf("4 1 1 %d", c.quantity), t0 + c.now,
			[5]int64{limited, 5, c.remaining, c.replyRetry, c.replyReset}})
	}

	return []sequence{
		{"redis-cell README", readme},
		// redis-cell's end-to-end test (tests/e2e.rs): 1 per 2 s, no burst.
		{"redis-cell e2e", []step{
			{"0 1 2 1", t0, [5]int64{0, 1, 0, -1, 2}},
			{"0 1 2 1", t0, [5]int64{1, 1, 0, 2, 2}},
			{"0 1 2 1", t0 + 2*s, [5]int64{0, 1, 0, -1, 2}},
		}},
		{"redis-cell it_rate_limits", unit},
		{"seconds round up only from a whole millisecond", []step{
			// 1 per 1 s (T = 1 s), max_burst 3: limit 4, tolerance 4 s.
			// Take all 4: TAT = t0+4 s.
			{"3 1 1 4", t0, [5]int64{0, 4, 0, -1, 4}},
			// At 0.5 s the TAT is 3.5 s ahead; 3.5+1 > 4: retry in 0.5 s,
			// 0 s and 500 ms → 1; reset 3.5 s → 4; remaining (4-3.5)/1 → 0.
			{"3 1 1 1", t0 + 500*ms, [5]int64{1, 4, 0, 1, 4}},
			// At 0.9995 s, 2 tokens: 3.0005+2-4 = 1.0005 s to wait. Its
			// millisecond part is 0, so redis-cell says 1, not 2; reset
			// 3.0005 s says 3, not 4.
			{"3 1 1 2", t0 + 999500*us, [5]int64{1, 4, 0, 1, 3}},
			// At 1 s one token is back: 3+1 <= 4, admitted, TAT t0+5 s.
			{"3 1 1", t0 + 1*s, [5]int64{0, 4, 0, -1, 4}},
			// At 1.9995 s: 3.0005+1-4 = 0.5 ms to wait, which redis-cell
			// answers with retry_after 0.
			{"3 1 1", t0 + 1999500*us, [5]int64{1, 4, 0, 0, 3}},
		}},
		{"remaining divides whole microseconds", []step{
			// 3 per 1 s: T = trunc(1e9/3) = 333333333 ns; max_burst 2: limit
			// 3, tolerance 999999999 ns.
			// Take 2 at t0+100 ns: TAT t0+666666766, reset 666666666 ns → 1 s,
			// room 333333333 ns → 333333 µs / 333333 µs = 1.
			{"2 3 1 2", t0 + 100, [5]int64{0, 3, 1, -1, 1}},
			// Peek at t0 (the clock stepped back 100 ns): reset 666666766 ns,
			// room 333333233 ns. In nanoseconds that is 0 whole tokens, but
			// redis-cell truncates to 333333 µs / 333333 µs = 1.
			{"2 3 1 0", t0, [5]int64{0, 3, 1, -1, 1}},
		}},
		{"remaining never above the limit", []step{
			// 500001 per 1 s: T = trunc(1e9/500001) = 1999 ns, 1 µs when
			// truncated; max_burst 9: tolerance 19990 ns. A full bucket's
			// room, 19 µs, over 1 µs would be 19 tokens of a limit of 10.
			{"9 500001 1 0", t0, [5]int64{0, 10, 10, -1, 0}},
			// After one token: room 17991 ns, 17 µs / 1 µs, capped at 10.
			{"9 500001 1", t0, [5]int64{0, 10, 10, -1, 0}},
			// After 6 more, 3 tokens are left: room 3 × 1999 = 5997 ns, 5 µs
			// / 1 µs = 5, more than there are, as redis-cell says.
			{"9 500001 1 6", t0, [5]int64{0, 10, 5, -1, 0}},
			// The last 3: room 0.
			{"9 500001 1 3", t0, [5]int64{0, 10, 0, -1, 0}},
		}},
		{"sub-microsecond interval", []step{
			// 2000000 per 1 s: T = 500 ns; max_burst 9: tolerance 5000 ns.
			// redis-cell divides by T in whole µs, 0, and answers remaining
			// 9223372036854775807; Sluice divides nanoseconds: 4500/500 = 9.
			// The reset of 500 ns has no millisecond part: 0 s.
			{"9 2000000 1", t0, [5]int64{0, 10, 9, -1, 0}},
		}},
		{"quantity above the limit", []step{
			// 30 per 60 s, max_burst 15: one token taken, then 17 asked for:
			// limited, retry -1 (never), the bucket unchanged: reset 2 s and
			// remaining (32-2)/2 = 15.
			{"15 30 60", t0, [5]int64{0, 16, 15, -1, 2}},
			{"15 30 60 17", t0, [5]int64{1, 16, 15, -1, 2}},
			{"15 30 60 9007199254740991", t0, [5]int64{1, 16, 15, -1, 2}},
		}},
		{"refill over time", []step{
			// 30 per 60 s, max_burst 15: empty the bucket (TAT t0+32 s).
			{"15 30 60 16", t0, [5]int64{0, 16, 0, -1, 32}},
			// At 3 s the TAT is 29 s ahead: 29+2 <= 32, admitted; reset 31 s,
			// remaining (32-31)/2 = 0.
			{"15 30 60", t0 + 3*s, [5]int64{0, 16, 0, -1, 31}},
			// Again at 3 s: 31+2-32 = 1 s to wait.
			{"15 30 60", t0 + 3*s, [5]int64{1, 16, 0, 1, 31}},
			// At 34 s the TAT (t0+33 s) is past: a full bucket again.
			{"15 30 60 0", t0 + 34*s, [5]int64{0, 16, 16, -1, 0}},
			{"15 30 60 4", t0 + 34*s, [5]int64{0, 16, 12, -1, 8}},
		}},
	}
}

func TestThrottleSequences(t *testing.T) {
	for _, seq := range throttleSequences() {
		t.Run(seq.name, func(t *testing.T) { runThrottle(t, seq.steps) })
	}
}

// cellUnitCase is a call of redis-cell's unit test it_rate_limits
// (src/cell/mod.rs): limit 5, one token per second. Durations in ns.
type cellUnitCase struct {
	now, quantity          int64
	remaining              int64
	reset, retry           int64
	limited                bool
	replyRetry, replyReset int64 // the reply's seconds
}

var cellUnitCases = []cellUnitCase{
	// A request larger than the limit is never allowed.
	{0, 6, 5, 0, -1, true, -1, 0},
	{0, 1, 4, 1 * s, -1, false, -1, 1},
	{0, 1, 3, 2 * s, -1, false, -1, 2},
	{0, 1, 2, 3 * s, -1, false, -1, 3},
	{0, 1, 1, 4 * s, -1, false, -1, 4},
	{0, 1, 0, 5 * s, -1, false, -1, 5},
	{0, 1, 0, 5 * s, 1 * s, true, 1, 5},
	{3000 * ms, 1, 2, 3000 * ms, -1, false, -1, 3},
	{3100 * ms, 1, 1, 3900 * ms, -1, false, -1, 4},
	{4000 * ms, 1, 1, 4000 * ms, -1, false, -1, 4},
	{8000 * ms, 1, 4, 1000 * ms, -1, false, -1, 1},
	{9500 * ms, 1, 4, 1000 * ms, -1, false, -1, 1},
	// Quantity 0 only peeks.
	{9500 * ms, 0, 4, 1 * s, -1, false, -1, 1},
	// A larger quantity uses more of the limit,
	{9500 * ms, 2, 2, 3 * s, -1, false, -1, 3},
	// and cannot exceed it.
	{9500 * ms, 5, 2, 3 * s, 3 * s, true, 3, 3},
}

// redis-cell's it_rate_limits checks durations in nanoseconds: so does this,
// on the core's decisions.
func TestThrottleRedisCellUnit(t *testing.T) {
	var state State
	for i, c := range cellUnitCases {
		p, err := NewThrottle(4, 1, 1, c.quantity)
		if err != nil {
			t.Fatal(err)
		}
		_, d := p.Apply(state, t0+c.now)
		if d.Limited != c.limited || d.Remaining != c.remaining || d.ResetAfter != c.reset || d.RetryAfter != c.retry {
			t.Errorf("case %d: decision %+v, want limited %v remaining %d reset %d retry %d",
				i, d, c.limited, c.remaining, c.reset, c.retry)
		}
		if d.Write {
			state = d.Next
		}
	}
}

func TestThrottleBackwardClock(t *testing.T) {
	// 30 per 60 s, max_burst 15. Take one token at t0+10 s: TAT t0+12 s.
	p, _ := NewThrottle(15, 30, 60, 1)
	peek, _ := NewThrottle(15, 30, 60, 0)
	_, d := p.Apply(State{}, t0+10*s)
	// The clock steps back 10 s. The TAT is now 12 s ahead instead of 2 s:
	// the bucket looks emptier, (32-12)/2 = 10 left rather than 15.
	r, _ := peek.Apply(d.Next, t0)
	if r.Remaining != 10 || r.ResetAfter != 12 {
		t.Fatalf("after a step back: %v, want remaining 10, reset 12", r.Ints())
	}
	// Stepping back further than the tolerance refuses everything, reads
	// included, until the clock catches up.
	r, d2 := p.Apply(d.Next, t0-30*s)
	if !r.Limited || d2.Write || r.RetryAfter != 12 {
		t.Fatalf("after a 40 s step back: %v, write %v; want limited, retry 42+2-32 = 12 s", r.Ints(), d2.Write)
	}
	if r, _ := peek.Apply(d.Next, t0-30*s); !r.Limited || r.Remaining != 0 {
		t.Fatalf("peek after a 40 s step back: %v, want limited", r.Ints())
	}
	// A sequence with the clock jumping back never admits more than the
	// same requests on a steady clock.
	var back, steady State
	admittedBack, admittedSteady := 0, 0
	for i := range 40 {
		now := t0 + int64(i)*s
		if r, d := p.Apply(steady, now); !r.Limited {
			admittedSteady++
			steady = d.Next
		}
		if i%10 == 9 {
			now -= 5 * s // the clock loses 5 s every 10 calls
		}
		if r, d := p.Apply(back, now); !r.Limited {
			admittedBack++
			back = d.Next
		}
	}
	if admittedBack > admittedSteady {
		t.Fatalf("admitted %d with backward steps, %d on a steady clock", admittedBack, admittedSteady)
	}
}

func TestParseThrottleErrors(t *testing.T) {
	notInt := func(arg string) error { return Error(throttleNotInteger + arg) }
	cases := []struct {
		args []string
		want error
	}{
		{nil, ErrThrottleUsage},
		{[]string{"1", "2"}, ErrThrottleUsage},
		{[]string{"1", "2", "3", "4", "5"}, ErrThrottleUsage},
		// Integers parse as Rust's i64 parse: errors name the argument, the
		// first bad one in order.
		{[]string{"a", "b", "c"}, notInt("a")},
		{[]string{"1", "1.5", "1"}, notInt("1.5")},
		{[]string{"1", "1", "1", "x"}, notInt("x")},
		{[]string{"1", "1", ""}, notInt("")},
		{[]string{" 1", "1", "1"}, notInt(" 1")},
		{[]string{"1 ", "1", "1"}, notInt("1 ")},
		{[]string{"+", "1", "1"}, notInt("+")},
		{[]string{"0x10", "1", "1"}, notInt("0x10")},
		{[]string{"1_000", "1", "1"}, notInt("1_000")},
		{[]string{"9223372036854775808", "1", "1"}, notInt("9223372036854775808")},
		// Redis trims line ends from error replies and turns inner ones into
		// spaces; a NUL ends the C string redis-cell hands it.
		{[]string{"1\r\n", "1", "1"}, notInt("1")},
		{[]string{"a\r\nb", "1", "1"}, notInt("a  b")},
		{[]string{"a\x00b", "1", "1"}, notInt("a")},
		// redis-cell's zero-rate check comes before Sluice's own.
		{[]string{"1", "0", "1"}, ErrZeroRate},
		{[]string{"1", "1", "0"}, ErrZeroRate},
		{[]string{"1", "-1", "0"}, ErrZeroRate},
		{[]string{"-1", "0", "-1", "-1"}, ErrZeroRate},
		// 2 s / 2000000001 is under a nanosecond.
		{[]string{"1", "2000000001", "2"}, ErrZeroRate},
		{[]string{"1", "-5000000000000000000", "1"}, ErrZeroRate},
		// Inputs redis-cell runs with and answers wrongly.
		{[]string{"1", "-1", "1"}, ErrNegativeRate},
		{[]string{"1", "1", "-1"}, ErrNegativeRate},
		{[]string{"1", "-30", "-60"}, ErrNegativeRate},
		{[]string{"1", "1", "9223372037"}, ErrThrottleRange},
		{[]string{"-1", "1", "1"}, ErrNegativeBurst},
		{[]string{"-9223372036854775808", "1", "1"}, ErrNegativeBurst},
		{[]string{"1", "1", "1", "-1"}, ErrNegativeQuantity},
		{[]string{"9223372036854775807", "1", "1"}, ErrThrottleRange},
		// T = 1 s times 2^62 tokens overflows int64 nanoseconds.
		{[]string{"4611686018427387903", "1", "1"}, ErrThrottleRange},
	}
	for _, c := range cases {
		var a [][]byte
		for _, s := range c.args {
			a = append(a, []byte(s))
		}
		_, err := ParseThrottle(a)
		if !errors.Is(err, c.want) {
			t.Errorf("CL.THROTTLE k %q: %v, want %v", c.args, err, c.want)
		}
	}
}

func TestParseThrottleAccepts(t *testing.T) {
	cases := []struct {
		args            string
		interval, limit int64
		quantity        int64
	}{
		{"15 30 60", 2 * s, 16, 1},
		{"15 30 60 0", 2 * s, 16, 0},
		// Rust's parse takes a '+' sign and leading zeros.
		{"+15 030 +60 +02", 2 * s, 16, 2},
		{"-0 1 1", 1 * s, 1, 1},
		// 7 per 1 s: 1e9/7 = 142857142.857 → 142857142 ns.
		{"0 7 1", 142857142, 1, 1},
		// The largest period: 9223372036 s.
		{"0 1 9223372036", 9223372036 * s, 1, 1},
		// Tolerance exactly within int64: T = 1 ns, 2^63-1 tokens.
		{"9223372036854775806 1000000000 1", 1, math.MaxInt64, 1},
	}
	for _, c := range cases {
		p, err := ParseThrottle(args(c.args))
		if err != nil {
			t.Errorf("CL.THROTTLE k %s: %v", c.args, err)
			continue
		}
		if p.limit.Interval() != c.interval || p.limit.Capacity() != c.limit || p.quantity != c.quantity {
			t.Errorf("CL.THROTTLE k %s: interval %d limit %d quantity %d, want %d %d %d", c.args,
				p.limit.Interval(), p.limit.Capacity(), p.quantity, c.interval, c.limit, c.quantity)
		}
	}
}

func TestCellSeconds(t *testing.T) {
	cases := []struct{ ns, want int64 }{
		{0, 0},
		{999 * us, 0}, // no millisecond part
		{1 * ms, 1},
		{1 * s, 1},
		{1*s + 999*us, 1},
		{1*s + 1*ms, 2},
		{2*s + 500*us, 2},
		// Beyond 2^53 ns float seconds round: 9e9 s + 999999999 ns is
		// 9000000001.0 in float64, then +1 for the millisecond part.
		{9_000_000_000*s + 999_999_999, 9_000_000_002},
	}
	for _, c := range cases {
		if got := cellSeconds(c.ns); got != c.want {
			t.Errorf("cellSeconds(%d) = %d, want %d", c.ns, got, c.want)
		}
	}
}
