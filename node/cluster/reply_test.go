package cluster

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// traceWriter records the calls made on it as text, to compare what a
// handler wrote with what a replay made.
type traceWriter struct {
	calls []string
}

func (w *traceWriter) add(format string, args ...any) {
	w.calls = append(w.calls, fmt.Sprintf(format, args...))
}

func (w *traceWriter) SimpleString(s string)            { w.add("simple %q", s) }
func (w *traceWriter) Error(msg string)                 { w.add("error %q", msg) }
func (w *traceWriter) Int(n int64)                      { w.add("int %d", n) }
func (w *traceWriter) Bulk(b []byte)                    { w.add("bulk %q", b) }
func (w *traceWriter) BulkString(s string)              { w.add("bulk %q", s) }
func (w *traceWriter) Null()                            { w.add("null") }
func (w *traceWriter) NullArray()                       { w.add("nullarray") }
func (w *traceWriter) Array(n int)                      { w.add("array %d", n) }
func (w *traceWriter) Map(n int)                        { w.add("map %d", n) }
func (w *traceWriter) Set(n int)                        { w.add("set %d", n) }
func (w *traceWriter) Double(f float64)                 { w.add("double %v", f) }
func (w *traceWriter) Bool(b bool)                      { w.add("bool %v", b) }
func (w *traceWriter) Verbatim(format string, s []byte) { w.add("verbatim %q %q", format, s) }
func (w *traceWriter) Push(n int)                       { w.add("push %d", n) }
func (w *traceWriter) SetProtocol(v int)                { w.add("protocol %d", v) }

func (w *traceWriter) String() string { return strings.Join(w.calls, "; ") }

var x = []byte("x")

// replies are handler bodies covering every ReplyWriter method, alone and
// nested.
var replies = map[string]func(w ReplyWriter){
	"simple":    func(w ReplyWriter) { w.SimpleString("OK") },
	"error":     func(w ReplyWriter) { w.Error("WRONGTYPE Operation against a key holding the wrong kind of value") },
	"int":       func(w ReplyWriter) { w.Int(-9223372036854775808) },
	"bulk":      func(w ReplyWriter) { w.Bulk([]byte("bin\x00ary\r\n")) },
	"bulkstr":   func(w ReplyWriter) { w.BulkString("") },
	"null":      func(w ReplyWriter) { w.Null() },
	"nullarray": func(w ReplyWriter) { w.NullArray() },
	"empty":     func(w ReplyWriter) { w.Array(0) },
	"double":    func(w ReplyWriter) { w.Double(math.Inf(-1)) },
	"bool":      func(w ReplyWriter) { w.Bool(true) },
	"verbatim":  func(w ReplyWriter) { w.Verbatim("txt", []byte("# Cluster\r\ncluster_state:ok\r\n")) },
	"hello": func(w ReplyWriter) {
		w.SetProtocol(3)
		w.Map(1)
		w.BulkString("proto")
		w.Int(3)
	},
	"nested": func(w ReplyWriter) {
		w.Map(3)
		w.BulkString("array")
		w.Array(4)
		w.Int(1)
		w.Null()
		w.Bulk(x)
		w.Array(2)
		w.Double(0.5)
		w.Bool(false)
		w.SimpleString("set")
		w.Set(2)
		w.BulkString("a")
		w.NullArray()
		w.BulkString("errors")
		w.Array(1)
		w.Error("ERR inner")
	},
	"push": func(w ReplyWriter) {
		w.Push(2)
		w.BulkString("invalidate")
		w.Array(1)
		w.BulkString("key")
		w.SimpleString("OK")
	},
}

func TestReplyRecordReplay(t *testing.T) {
	for name, write := range replies {
		t.Run(name, func(t *testing.T) {
			var direct, replayed traceWriter
			write(&direct)
			var rec recorder
			write(&rec)
			if !checkReply(rec.buf) {
				t.Fatalf("checkReply rejected %x", rec.buf)
			}
			replay(rec.buf, &replayed)
			if direct.String() != replayed.String() {
				t.Fatalf("replayed\n  %s\nwant\n  %s", replayed.String(), direct.String())
			}
		})
	}
}

func TestCheckReplyRejectsTruncated(t *testing.T) {
	var rec recorder
	replies["nested"](&rec)
	for n := range len(rec.buf) {
		if checkReply(rec.buf[:n]) && n > 0 {
			t.Errorf("prefix of %d of %d bytes accepted", n, len(rec.buf))
		}
	}
	for _, bad := range [][]byte{
		{0},                       // no such opcode
		{opArray, 0xff},           // truncated count
		{opArray, 2, opNull},      // one element short
		{opBool, 2},               // not a bool
		{opBulk, 5, 'a'},          // short string
		{opMap, 0xff, 0xff, 0x7f}, // a huge count with nothing behind it
	} {
		if checkReply(bad) {
			t.Errorf("accepted %x", bad)
		}
	}
}

func FuzzReplay(f *testing.F) {
	for _, write := range replies {
		var rec recorder
		write(&rec)
		f.Add(rec.buf)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !checkReply(b) {
			return
		}
		var w traceWriter
		replay(b, &w)
		// What was accepted must record back to the same bytes, but for
		// BulkString and Bulk sharing an opcode, and varints that are
		// not minimal.
		var rec recorder
		replay(b, &rec)
		if !checkReply(rec.buf) {
			t.Fatalf("re-recording %x gave %x, rejected", b, rec.buf)
		}
	})
}

func TestCommandCodec(t *testing.T) {
	args := [][]byte{[]byte("SET"), []byte("key"), {}, make([]byte, 300)}
	size := commandSize(args)
	frame := appendCommand(appendHeader(nil, msgCommand, 7, size), args)
	if len(frame) != frameHeader+size {
		t.Fatalf("frame of %d bytes, want %d", len(frame), frameHeader+size)
	}
	got, ok := decodeCommand(frame[frameHeader:], nil)
	if !ok || len(got) != len(args) {
		t.Fatalf("decoded %d args, ok=%v", len(got), ok)
	}
	for i := range args {
		if string(got[i]) != string(args[i]) {
			t.Errorf("arg %d = %q, want %q", i, got[i], args[i])
		}
	}
	for n := range len(frame) - frameHeader {
		if _, ok := decodeCommand(frame[frameHeader:frameHeader+n], nil); ok {
			t.Errorf("truncated command of %d bytes accepted", n)
		}
	}
}

func BenchmarkReplay(b *testing.B) {
	var rec recorder
	replies["nested"](&rec)
	var w discard
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.buf)))
	for b.Loop() {
		if !checkReply(rec.buf) {
			b.Fatal("rejected")
		}
		replay(rec.buf, w)
	}
}

func BenchmarkRecord(b *testing.B) {
	var rec recorder
	b.ReportAllocs()
	for b.Loop() {
		rec.reset()
		replies["nested"](&rec)
	}
}
