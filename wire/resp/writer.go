package resp

import (
	"math"
	"strconv"
	"sync/atomic"

	"github.com/tidwall/redcon"
)

// writer encodes replies by appending them to b. It implements node.Writer
// for RESP2 and RESP3. It never allocates beyond growing b: numbers are
// formatted with strconv.Append* into b or into a small array on the stack.
//
// proto is written with an atomic store so that Conn.Send, on another
// goroutine, can read the version a connection has switched to while the
// connection is running a command; the writer's own methods, which run on
// the goroutine that stores it, read it plainly.
type writer struct {
	b     []byte
	proto int32 // 2 or 3
}

// resp3 reports whether the writer encodes RESP3.
func (w *writer) resp3() bool { return w.proto == 3 }

// SetProtocol switches the encoding of every following reply: 3 selects
// RESP3, anything else RESP2.
func (w *writer) SetProtocol(v int) {
	if v != 3 {
		v = 2
	}
	atomic.StoreInt32(&w.proto, int32(v))
}

// SimpleString writes +s. CR and LF become spaces, as they would end the line.
func (w *writer) SimpleString(s string) { w.b = redcon.AppendString(w.b, s) }

// Error writes -msg; msg carries its own prefix ("ERR ...", "WRONGTYPE ...").
// CR and LF become spaces, as Redis does for formatted errors.
func (w *writer) Error(msg string) { w.b = redcon.AppendError(w.b, msg) }

// Int writes :n.
func (w *writer) Int(n int64) { w.b = redcon.AppendInt(w.b, n) }

// Bulk writes $len followed by b.
func (w *writer) Bulk(b []byte) { w.b = redcon.AppendBulk(w.b, b) }

// BulkString writes $len followed by s.
func (w *writer) BulkString(s string) { w.b = redcon.AppendBulkString(w.b, s) }

// Null writes the nil reply: $-1 in RESP2, _ in RESP3.
func (w *writer) Null() {
	if w.resp3() {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = redcon.AppendNull(w.b)
}

// NullArray writes the nil multi-bulk: *-1 in RESP2, _ in RESP3.
func (w *writer) NullArray() {
	if w.resp3() {
		w.b = append(w.b, "_\r\n"...)
		return
	}
	w.b = append(w.b, "*-1\r\n"...)
}

// Array writes the header of an array of n replies.
func (w *writer) Array(n int) { w.b = redcon.AppendArray(w.b, n) }

// Map writes the header of a map of n pairs: %n in RESP3, an array of 2n
// replies in RESP2.
func (w *writer) Map(n int) {
	if w.resp3() {
		w.b = appendHeader(w.b, '%', n)
		return
	}
	w.b = redcon.AppendArray(w.b, 2*n)
}

// Set writes the header of a set of n replies: ~n in RESP3, *n in RESP2.
func (w *writer) Set(n int) {
	if w.resp3() {
		w.b = appendHeader(w.b, '~', n)
		return
	}
	w.b = redcon.AppendArray(w.b, n)
}

// Push writes the header of an out-of-band message of n replies: >n in RESP3,
// *n in RESP2 (where Redis delivers such messages as Pub/Sub arrays).
func (w *writer) Push(n int) {
	if w.resp3() {
		w.b = appendHeader(w.b, '>', n)
		return
	}
	w.b = redcon.AppendArray(w.b, n)
}

// Double writes f as Redis 7.0 formats doubles (printf's %.17g, and "inf",
// "-inf"): a bulk string in RESP2, ,f in RESP3.
func (w *writer) Double(f float64) {
	var num [32]byte // %.17g needs at most 24 bytes ("-2.2250738585072014e-308")
	d := appendDouble(num[:0], f)
	if w.resp3() {
		w.b = append(w.b, ',')
		w.b = append(w.b, d...)
		w.b = append(w.b, '\r', '\n')
		return
	}
	w.b = redcon.AppendBulk(w.b, d)
}

// Bool writes #t or #f in RESP3, :1 or :0 in RESP2.
func (w *writer) Bool(b bool) {
	switch {
	case w.resp3() && b:
		w.b = append(w.b, "#t\r\n"...)
	case w.resp3():
		w.b = append(w.b, "#f\r\n"...)
	case b:
		w.b = append(w.b, ":1\r\n"...)
	default:
		w.b = append(w.b, ":0\r\n"...)
	}
}

// Verbatim writes a verbatim string: =len\r\nfmt:s in RESP3, where fmt is
// format cut or padded with spaces to three bytes as Redis does, and a bulk
// string of s in RESP2.
func (w *writer) Verbatim(format string, s []byte) {
	if !w.resp3() {
		w.b = redcon.AppendBulk(w.b, s)
		return
	}
	w.b = appendHeader(w.b, '=', len(s)+4)
	for i := range 3 {
		if i < len(format) {
			w.b = append(w.b, format[i])
		} else {
			w.b = append(w.b, ' ')
		}
	}
	w.b = append(w.b, ':')
	w.b = append(w.b, s...)
	w.b = append(w.b, '\r', '\n')
}

// appendHeader appends an aggregate or length header: prefix, n, CRLF.
func appendHeader(b []byte, prefix byte, n int) []byte {
	b = append(b, prefix)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// appendDouble appends f formatted as C's printf("%.17g") formats it, which
// is what Redis 7.0 replies for doubles. Go's 'g' verb with precision 17 has
// the same rules (shortest of %e and %f, trailing zeros removed, two-digit
// exponent at least); only the non-finite values are spelled differently.
func appendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		if math.Signbit(f) {
			return append(b, "-nan"...)
		}
		return append(b, "nan"...)
	}
	return strconv.AppendFloat(b, f, 'g', 17, 64)
}
