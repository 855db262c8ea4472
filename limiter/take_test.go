package limiter

import (
	"errors"
	"testing"
)

// runTake plays RL.TAKE steps against one bucket, as runThrottle does.
func runTake(t *testing.T, steps []step) {
	t.Helper()
	var state State
	for i, st := range steps {
		p, err := ParseTake(args(st.args))
		if err != nil {
			t.Fatalf("step %d: RL.TAKE k %s: %v", i, st.args, err)
		}
		r, d := p.Apply(state, st.now)
		if got := r.Ints(); got != st.want {
			t.Errorf("step %d: RL.TAKE k %s at t0%+dns = %v, want %v", i, st.args, st.now-t0, got, st.want)
		}
		if d.Write {
			state = d.Next
		}
	}
}

func TestTakeSequences(t *testing.T) {
	t.Run("burst, refill and rounding", func(t *testing.T) {
		// 10 per 1000 ms: T = 100 ms; capacity 10, tolerance 1000 ms.
		const p = "LIMIT 10 PERIOD 1000"
		runTake(t, []step{
			{p, t0, [5]int64{0, 10, 9, -1, 100}},
			// 9 more: TAT 1000 ms ahead, exactly the tolerance: admitted.
			{p + " COST 9", t0, [5]int64{0, 10, 0, -1, 1000}},
			// Empty: 1000+100-1000 = 100 ms to wait.
			{p, t0, [5]int64{1, 10, 0, 100, 1000}},
			// At 50 ms: 950+100-1000 = 50 ms.
			{p, t0 + 50*ms, [5]int64{1, 10, 0, 50, 950}},
			// At 250.000001 ms, a read: the TAT is 749.999999 ms ahead, which
			// rounds up to 750; room 250.000001 ms holds 2 whole tokens.
			{p + " COST 0", t0 + 250*ms + 1, [5]int64{0, 10, 2, -1, 750}},
			// 3 tokens then: 749.999999+300-1000 = 49.999999 ms → 50.
			{p + " cost 3", t0 + 250*ms + 1, [5]int64{1, 10, 2, 50, 750}},
			// At 300 ms: 700+300 = 1000, admitted, the bucket empty again.
			{"period 1000 cost 3 limit 10", t0 + 300*ms, [5]int64{0, 10, 0, -1, 1000}},
		})
	})
	t.Run("burst above the rate", func(t *testing.T) {
		// 1 per 1000 ms (T = 1 s) with a bucket of 3: tolerance 3 s.
		const p = "LIMIT 1 PERIOD 1000 BURST 3"
		runTake(t, []step{
			{p + " COST 3", t0, [5]int64{0, 3, 0, -1, 3000}},
			// At 1.5 s: 1.5+1 <= 3, admitted; room 0.5 s: 0 whole tokens.
			{p, t0 + 1500*ms, [5]int64{0, 3, 0, -1, 2500}},
			// 2 more: 2.5+2-3 = 1.5 s to wait.
			{p + " COST 2", t0 + 1500*ms, [5]int64{1, 3, 0, 1500, 2500}},
			// At 4 s the bucket is full: reads report the capacity.
			{p + " COST 0", t0 + 4*s, [5]int64{0, 3, 3, -1, 0}},
		})
	})
	t.Run("burst below the rate", func(t *testing.T) {
		// 10 per 1000 ms with a bucket of 2: at most 2 at once.
		const p = "LIMIT 10 PERIOD 1000 BURST 2"
		runTake(t, []step{
			{p, t0, [5]int64{0, 2, 1, -1, 100}},
			{p, t0, [5]int64{0, 2, 0, -1, 200}},
			{p, t0, [5]int64{1, 2, 0, 100, 200}},
			{p, t0 + 100*ms, [5]int64{0, 2, 0, -1, 200}},
		})
	})
	t.Run("truncated interval", func(t *testing.T) {
		// 3 per 1 ms: T = trunc(1e6/3) = 333333 ns, tolerance 999999 ns.
		// A reset of 333333 ns rounds up to 1 ms; 3 tokens come back within
		// each millisecond.
		const p = "LIMIT 3 PERIOD 1"
		runTake(t, []step{
			{p + " COST 3", t0, [5]int64{0, 3, 0, -1, 1}},
			{p, t0, [5]int64{1, 3, 0, 1, 1}},
			{p + " COST 3", t0 + 1*ms, [5]int64{0, 3, 0, -1, 1}},
		})
	})
}

func TestParseTakeErrors(t *testing.T) {
	cases := []struct {
		args string
		want error
	}{
		{"", ErrTakeArgs},
		{"LIMIT 10", ErrTakeArgs},
		{"PERIOD 10 COST 1", ErrTakeArgs},
		{"LIMIT", ErrSyntax},
		{"LIMIT 10 PERIOD", ErrSyntax},
		{"LIMIT 10 PERIOD 1000 FOO 1", ErrSyntax},
		{"LIMITS 10 PERIOD 1000", ErrSyntax},
		{"LIMIT 1 LIMIT 2 PERIOD 1000", ErrSyntax},
		// Integers parse as Redis's string2ll.
		{"LIMIT x PERIOD 1000", ErrNotInteger},
		{"LIMIT +1 PERIOD 1000", ErrNotInteger},
		{"LIMIT 01 PERIOD 1000", ErrNotInteger},
		{"LIMIT 1 PERIOD -0", ErrNotInteger},
		{"LIMIT 1 PERIOD 1.5", ErrNotInteger},
		{"LIMIT 1 PERIOD 9223372036854775808", ErrNotInteger},
		{"LIMIT 0 PERIOD 1000", ErrTakeLimit},
		{"LIMIT -1 PERIOD 1000", ErrTakeLimit},
		{"LIMIT 1 PERIOD 0", ErrTakePeriod},
		{"LIMIT 1 PERIOD 1000 BURST 0", ErrTakeBurst},
		{"LIMIT 1 PERIOD 1000 COST -1", ErrTakeCost},
		// 9223372036855 ms is past int64 nanoseconds.
		{"LIMIT 1 PERIOD 9223372036855", ErrTakeRange},
		// 1 ms / 1000001 is under a nanosecond.
		{"LIMIT 1000001 PERIOD 1", ErrTakeRate},
		// T = 1 s times 9223372037 tokens passes 292 years.
		{"LIMIT 1 PERIOD 1000 BURST 9223372037", ErrTakeRange},
		{"LIMIT 10 PERIOD 1000 COST 11", ErrCostAboveBurst},
		{"LIMIT 10 PERIOD 1000 BURST 5 COST 6", ErrCostAboveBurst},
	}
	for _, c := range cases {
		if _, err := ParseTake(args(c.args)); !errors.Is(err, c.want) {
			t.Errorf("RL.TAKE k %s: %v, want %v", c.args, err, c.want)
		}
	}
}

func TestParseTakeAccepts(t *testing.T) {
	cases := []struct {
		args                     string
		interval, capacity, cost int64
	}{
		{"LIMIT 10 PERIOD 1000", 100 * ms, 10, 1},
		{"limit 10 Period 1000 burst 20 cOsT 0", 100 * ms, 20, 0},
		{"COST 10 BURST 10 PERIOD 1000 LIMIT 10", 100 * ms, 10, 10},
		{"LIMIT 1000000 PERIOD 1", 1, 1000000, 1},
		{"LIMIT 1 PERIOD 9223372036854", 9223372036854 * ms, 1, 1},
	}
	for _, c := range cases {
		p, err := ParseTake(args(c.args))
		if err != nil {
			t.Errorf("RL.TAKE k %s: %v", c.args, err)
			continue
		}
		if p.limit.Interval() != c.interval || p.limit.Capacity() != c.capacity || p.cost != c.cost {
			t.Errorf("RL.TAKE k %s: interval %d capacity %d cost %d, want %d %d %d", c.args,
				p.limit.Interval(), p.limit.Capacity(), p.cost, c.interval, c.capacity, c.cost)
		}
	}
}
