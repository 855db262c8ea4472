package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTypedAPI(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	ctx := context.Background()
	if _, err := n.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if err := n.Set(ctx, "k", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := n.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get: %q %v", v, err)
	}
	// The same record as the commands see.
	s := connect(t, n)
	s.expect(int64(1000), "PTTL", "k")
	clock.Advance(time.Second + time.Millisecond)
	if _, err := n.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the TTL: %v", err)
	}
	s.expect("OK", "SET", "a", "1")
	if d, err := n.Delete(ctx, "a", "nope"); err != nil || d != 1 {
		t.Fatalf("Delete: %d %v", d, err)
	}
	if _, err := n.Throttle(ctx, "bucket", Limit{Rate: 1, Period: time.Second}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Get(ctx, "bucket"); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Get of a bucket: %v", err)
	}
}

func BenchmarkAppendValue(b *testing.B) {
	n, _ := newTestNode(b, Config{})
	ctx := context.Background()
	if err := n.Set(ctx, "key:000001", make([]byte, 64), 0); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = n.AppendValue(ctx, buf[:0], "key:000001")
	}
}

// BenchmarkGet allocates only the returned value.
func BenchmarkGet(b *testing.B) {
	n, _ := newTestNode(b, Config{})
	ctx := context.Background()
	if err := n.Set(ctx, "key:000001", make([]byte, 64), 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Get(ctx, "key:000001"); err != nil {
			b.Fatal(err)
		}
	}
}
