package limiter

import "testing"

// sink keeps results alive so the compiler cannot drop the work.
var sink Reply

// One CL.THROTTLE decision as the node runs it: decode the record, decide,
// encode the new state into a stack buffer and store it.
func BenchmarkThrottle(b *testing.B) {
	p, err := ParseThrottle(args("15 30 60 1"))
	if err != nil {
		b.Fatal(err)
	}
	record := State{}.Append(nil)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += 2 * s // one token back per call: every call is admitted
		st, err := Decode(record)
		if err != nil {
			b.Fatal(err)
		}
		r, d := p.Apply(st, now)
		if d.Write {
			var buf [StateSize]byte
			copy(record, d.Next.Append(buf[:0]))
		}
		sink = r
	}
}

// One RL.TAKE decision, as BenchmarkThrottle.
func BenchmarkTake(b *testing.B) {
	p, err := ParseTake(args("LIMIT 100 PERIOD 1000 BURST 200 COST 1"))
	if err != nil {
		b.Fatal(err)
	}
	record := State{}.Append(nil)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now += 10 * ms
		st, err := Decode(record)
		if err != nil {
			b.Fatal(err)
		}
		r, d := p.Apply(st, now)
		if d.Write {
			var buf [StateSize]byte
			copy(record, d.Next.Append(buf[:0]))
		}
		sink = r
	}
}

func BenchmarkParseThrottle(b *testing.B) {
	argv := args("15 30 60 1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseThrottle(argv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTake(b *testing.B) {
	argv := args("LIMIT 100 PERIOD 1000 BURST 200 COST 1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTake(argv); err != nil {
			b.Fatal(err)
		}
	}
}
