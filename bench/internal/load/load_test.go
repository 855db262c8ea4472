package load

import (
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"
)

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in    string
		n     int
		isErr bool
	}{
		{"+OK\r\n", 5, false},
		{"-ERR no\r\n", 9, true},
		{":42\r\n", 5, false},
		{"$3\r\nabc\r\n", 9, false},
		{"$-1\r\n", 5, false},
		{"$3\r\nab", 0, false},
		{"*3\r\n$5\r\nfresh\r\n$1\r\nv\r\n$-1\r\n", 27, false},
		{"*2\r\n:1\r\n-ERR x\r\n", 16, true},
		{"*2\r\n:1\r\n", 0, false},
		{"%1\r\n+a\r\n:1\r\n", 12, false},
		{"+OK\r\n+OK\r\n", 5, false},
		{"", 0, false},
		{"+OK", 0, false},
	} {
		n, isErr, err := scan([]byte(tc.in))
		if err != nil || n != tc.n || isErr != tc.isErr {
			t.Errorf("scan(%q) = %d, %v, %v; want %d, %v", tc.in, n, isErr, err, tc.n, tc.isErr)
		}
	}
	for _, bad := range []string{"?x\r\n", "$x\r\nab\r\n", "+OK\n"} {
		if _, _, err := scan([]byte(bad)); err == nil {
			t.Errorf("scan(%q): no error", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.Quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 1.0/subBuckets {
			t.Errorf("Quantile(%v) = %v, want %v within %.1f%%", tc.q, got, tc.want, 100.0/subBuckets)
		}
	}
	for _, d := range []time.Duration{0, 1, 63, 64, 127, 128, 1 << 20, 1<<40 - 1, 1 << 50} {
		if i := bucket(d); i < 0 || i >= len(h.counts) {
			t.Fatalf("bucket(%d) = %d out of range", d, i)
		}
		if d < 1<<40 && upper(bucket(d)) < d {
			t.Errorf("upper(bucket(%d)) = %d", d, upper(bucket(d)))
		}
	}
}

func TestShare(t *testing.T) {
	next := 0
	for i := range 3 {
		first, count := Share(301, 3, i)
		if first != next || count < 100 || count > 101 {
			t.Fatalf("Share(301, 3, %d) = %d, %d", i, first, count)
		}
		next += count
	}
	if next != 301 {
		t.Fatalf("shares add up to %d", next)
	}
}

func TestAppendKey(t *testing.T) {
	if got := string(AppendKey(nil, "key:", 42)); got != "key:000000000042" {
		t.Fatal(got)
	}
}

// TestZipf checks the skew: with theta 0.99 over 1000 keys the first key
// takes about 1/H(1000, 0.99) = 13% of the draws and the first ten 39%.
func TestZipf(t *testing.T) {
	p := NewZipf(1000, 0.99).Picker(1)
	const draws = 200000
	var first, ten int
	for range draws {
		k := p.Next()
		if k >= 1000 {
			t.Fatalf("key %d out of range", k)
		}
		if k == 0 {
			first++
		}
		if k < 10 {
			ten++
		}
	}
	if f := float64(first) / draws; f < 0.12 || f > 0.14 {
		t.Errorf("key 0 drawn %.3f of the time", f)
	}
	if f := float64(ten) / draws; f < 0.37 || f > 0.41 {
		t.Errorf("keys 0-9 drawn %.3f of the time", f)
	}
}

// echoServer answers every request with +OK, or -ERR for requests naming
// the command FAIL.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var in []byte
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					in = append(in, buf[:n]...)
					var out []byte
					for {
						size, _, err := scan(in) // requests are RESP arrays too
						if err != nil || size == 0 {
							break
						}
						if strings.Contains(string(in[:size]), "FAIL") {
							out = append(out, "-ERR failed\r\n"...)
						} else {
							out = append(out, "+OK\r\n"...)
						}
						in = in[size:]
					}
					c.Write(out)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRun(t *testing.T) {
	addr := echoServer(t)
	res, err := Run(context.Background(), Config{
		Addr: addr, Conns: 3, Pipeline: 7, Requests: 301,
		Source: func(i int) Source {
			first, _ := Share(301, 3, i)
			return &Command{Args: []string{"SET", "", "v"}, Key: 1, Prefix: "k:", Keys: Sequence(uint64(first))}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 301 || res.Errors != 0 || res.Latency.Count() != 301 {
		t.Fatalf("ops %d, errors %d, latencies %d", res.Ops, res.Errors, res.Latency.Count())
	}

	res, err = Run(context.Background(), Config{
		Addr: addr, Conns: 2, Pipeline: 4, Duration: 100 * time.Millisecond,
		Source: func(i int) Source {
			return &Command{Args: []string{"FAIL", ""}, Key: 1, Prefix: "k:", Keys: Uniform(10, uint64(i))}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors != res.Ops || res.FirstError != "-ERR failed" || res.Elapsed < 100*time.Millisecond {
		t.Fatalf("ops %d, errors %d (%q), elapsed %v", res.Ops, res.Errors, res.FirstError, res.Elapsed)
	}
}
