package resp

import (
	"math"
	"testing"
)

func TestWriter(t *testing.T) {
	tests := []struct {
		name  string
		write func(w *writer)
		resp2 string
		resp3 string
	}{
		{"simple string", func(w *writer) { w.SimpleString("OK") }, "+OK\r\n", "+OK\r\n"},
		{"simple string newlines", func(w *writer) { w.SimpleString("a\r\nb") }, "+a  b\r\n", "+a  b\r\n"},
		{"error", func(w *writer) { w.Error("ERR unknown command 'x'") }, "-ERR unknown command 'x'\r\n", "-ERR unknown command 'x'\r\n"},
		{"error prefix", func(w *writer) { w.Error("WRONGTYPE Operation against a key") }, "-WRONGTYPE Operation against a key\r\n", "-WRONGTYPE Operation against a key\r\n"},
		{"error newlines", func(w *writer) { w.Error("ERR a\nb") }, "-ERR a b\r\n", "-ERR a b\r\n"},
		{"int", func(w *writer) { w.Int(42) }, ":42\r\n", ":42\r\n"},
		{"int zero", func(w *writer) { w.Int(0) }, ":0\r\n", ":0\r\n"},
		{"int negative", func(w *writer) { w.Int(-1) }, ":-1\r\n", ":-1\r\n"},
		{"int min", func(w *writer) { w.Int(math.MinInt64) }, ":-9223372036854775808\r\n", ":-9223372036854775808\r\n"},
		{"int max", func(w *writer) { w.Int(math.MaxInt64) }, ":9223372036854775807\r\n", ":9223372036854775807\r\n"},
		{"bulk", func(w *writer) { w.Bulk([]byte("hello")) }, "$5\r\nhello\r\n", "$5\r\nhello\r\n"},
		{"bulk empty", func(w *writer) { w.Bulk([]byte{}) }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"bulk nil is empty", func(w *writer) { w.Bulk(nil) }, "$0\r\n\r\n", "$0\r\n\r\n"},
		{"bulk binary", func(w *writer) { w.Bulk([]byte("a\r\n\x00b")) }, "$5\r\na\r\n\x00b\r\n", "$5\r\na\r\n\x00b\r\n"},
		{"bulk long", func(w *writer) { w.Bulk([]byte("0123456789")) }, "$10\r\n0123456789\r\n", "$10\r\n0123456789\r\n"},
		{"bulk string", func(w *writer) { w.BulkString("foo") }, "$3\r\nfoo\r\n", "$3\r\nfoo\r\n"},
		{"null", func(w *writer) { w.Null() }, "$-1\r\n", "_\r\n"},
		{"null array", func(w *writer) { w.NullArray() }, "*-1\r\n", "_\r\n"},
		{"array", func(w *writer) { w.Array(2); w.Int(1); w.BulkString("a") }, "*2\r\n:1\r\n$1\r\na\r\n", "*2\r\n:1\r\n$1\r\na\r\n"},
		{"array empty", func(w *writer) { w.Array(0) }, "*0\r\n", "*0\r\n"},
		{"array large", func(w *writer) { w.Array(1000) }, "*1000\r\n", "*1000\r\n"},
		{"map", func(w *writer) { w.Map(1); w.BulkString("k"); w.Int(7) }, "*2\r\n$1\r\nk\r\n:7\r\n", "%1\r\n$1\r\nk\r\n:7\r\n"},
		{"map empty", func(w *writer) { w.Map(0) }, "*0\r\n", "%0\r\n"},
		{"map large", func(w *writer) { w.Map(12) }, "*24\r\n", "%12\r\n"},
		{"set", func(w *writer) { w.Set(2); w.BulkString("a"); w.BulkString("b") }, "*2\r\n$1\r\na\r\n$1\r\nb\r\n", "~2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{"push", func(w *writer) { w.Push(2); w.BulkString("invalidate"); w.Array(1); w.BulkString("k") },
			"*2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"},
		{"double", func(w *writer) { w.Double(1.5) }, "$3\r\n1.5\r\n", ",1.5\r\n"},
		{"double integral", func(w *writer) { w.Double(100) }, "$3\r\n100\r\n", ",100\r\n"},
		{"double 17 digits", func(w *writer) { w.Double(0.1) }, "$19\r\n0.10000000000000001\r\n", ",0.10000000000000001\r\n"},
		{"double 3.14", func(w *writer) { w.Double(3.14) }, "$18\r\n3.1400000000000001\r\n", ",3.1400000000000001\r\n"},
		{"double zero", func(w *writer) { w.Double(0) }, "$1\r\n0\r\n", ",0\r\n"},
		{"double negative zero", func(w *writer) { w.Double(math.Copysign(0, -1)) }, "$2\r\n-0\r\n", ",-0\r\n"},
		{"double exponent", func(w *writer) { w.Double(1e17) }, "$5\r\n1e+17\r\n", ",1e+17\r\n"},
		{"double no exponent below 1e17", func(w *writer) { w.Double(1e16) }, "$17\r\n10000000000000000\r\n", ",10000000000000000\r\n"},
		{"double small", func(w *writer) { w.Double(1e-5) }, "$22\r\n1.0000000000000001e-05\r\n", ",1.0000000000000001e-05\r\n"},
		{"double 1e-4", func(w *writer) { w.Double(1e-4) }, "$6\r\n0.0001\r\n", ",0.0001\r\n"},
		{"double max", func(w *writer) { w.Double(math.MaxFloat64) }, "$23\r\n1.7976931348623157e+308\r\n", ",1.7976931348623157e+308\r\n"},
		{"double denormal", func(w *writer) { w.Double(5e-324) }, "$23\r\n4.9406564584124654e-324\r\n", ",4.9406564584124654e-324\r\n"},
		{"double inf", func(w *writer) { w.Double(math.Inf(1)) }, "$3\r\ninf\r\n", ",inf\r\n"},
		{"double -inf", func(w *writer) { w.Double(math.Inf(-1)) }, "$4\r\n-inf\r\n", ",-inf\r\n"},
		{"double nan", func(w *writer) { w.Double(math.NaN()) }, "$3\r\nnan\r\n", ",nan\r\n"},
		{"bool true", func(w *writer) { w.Bool(true) }, ":1\r\n", "#t\r\n"},
		{"bool false", func(w *writer) { w.Bool(false) }, ":0\r\n", "#f\r\n"},
		{"verbatim", func(w *writer) { w.Verbatim("txt", []byte("hi")) }, "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n"},
		{"verbatim markdown", func(w *writer) { w.Verbatim("mkd", []byte("# a\r\nb")) }, "$6\r\n# a\r\nb\r\n", "=10\r\nmkd:# a\r\nb\r\n"},
		{"verbatim short format", func(w *writer) { w.Verbatim("t", nil) }, "$0\r\n\r\n", "=4\r\nt  :\r\n"},
		{"verbatim long format", func(w *writer) { w.Verbatim("text", []byte("x")) }, "$1\r\nx\r\n", "=5\r\ntex:x\r\n"},
	}
	for _, tt := range tests {
		for _, v := range []struct {
			proto int
			want  string
		}{{2, tt.resp2}, {3, tt.resp3}} {
			w := &writer{}
			w.SetProtocol(v.proto)
			tt.write(w)
			if got := string(w.b); got != v.want {
				t.Errorf("%s, RESP%d: got %q, want %q", tt.name, v.proto, got, v.want)
			}
		}
	}
}

func TestWriterSetProtocol(t *testing.T) {
	w := &writer{}
	if w.resp3() {
		t.Fatal("the zero writer speaks RESP3")
	}
	w.SetProtocol(3)
	w.Null()
	w.SetProtocol(2)
	w.Null()
	w.SetProtocol(7) // not a version: RESP2
	w.Bool(true)
	if got, want := string(w.b), "_\r\n$-1\r\n:1\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestAppendDouble pins the %.17g rules the double replies depend on: when
// the exponent form is chosen, and that trailing zeros go.
func TestAppendDouble(t *testing.T) {
	tests := map[float64]string{
		1:                       "1",
		-2.5:                    "-2.5",
		123456789:               "123456789",
		1234567890123456789:     "1.2345678901234568e+18",
		0.0001:                  "0.0001",
		0.5:                     "0.5",
		1.0 / 3:                 "0.33333333333333331",
		99999999999999999:       "1e+17",
		12345678901234567:       "12345678901234568",
		2.2250738585072014e-308: "2.2250738585072014e-308",
	}
	for f, want := range tests {
		if got := string(appendDouble(nil, f)); got != want {
			t.Errorf("appendDouble(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestWriterAllocs(t *testing.T) {
	w := &writer{b: make([]byte, 0, 4096)}
	val := []byte("value")
	for _, proto := range []int{2, 3} {
		w.SetProtocol(proto)
		allocs := testing.AllocsPerRun(100, func() {
			w.b = w.b[:0]
			w.Array(3)
			w.Bulk(val)
			w.Int(12345)
			w.Double(3.25)
			w.Map(1)
			w.BulkString("k")
			w.Bool(true)
			w.Verbatim("txt", val)
			w.Null()
			w.NullArray()
			w.SimpleString("OK")
			w.Error("ERR x")
		})
		if allocs != 0 {
			t.Errorf("RESP%d: %v allocations per reply set, want 0", proto, allocs)
		}
	}
}
