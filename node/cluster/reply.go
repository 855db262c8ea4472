package cluster

import (
	"encoding/binary"
	"errors"
	"math"
	"unsafe"
)

// A reply crosses the network as the calls the handler made on its
// ReplyWriter, one opcode each, so the sender replays them into its client's
// writer and that writer alone decides between RESP2 and RESP3 (a Map the
// owner wrote reaches a RESP2 client as a flat array, a RESP3 client as a
// map). Lengths and counts are uvarints, Int a zig-zag varint, Double the 8
// little-endian bytes of its IEEE 754 bits.
const (
	opSimple    byte = iota + 1 // len, bytes
	opError                     // len, bytes
	opInt                       // varint
	opBulk                      // len, bytes (Bulk and BulkString alike)
	opNull                      //
	opNullArray                 //
	opArray                     // count
	opMap                       // count of pairs
	opSet                       // count
	opDouble                    // 8 bytes
	opBool                      // 1 byte, 0 or 1
	opVerbatim                  // len, format bytes, len, bytes
	opPush                      // count
	opProtocol                  // uvarint version
)

// errBadReply reports a recorded reply that does not parse: a peer bug or a
// corrupt frame, never replayed in part.
var errBadReply = errors.New("cluster: malformed reply from peer")

// recorder is the ReplyWriter a peer's handler writes to: it appends each
// call to buf. Reset and reuse it; it allocates only to grow buf.
type recorder struct {
	buf []byte
}

func (r *recorder) reset() { r.buf = r.buf[:0] }

func (r *recorder) bytes(op byte, b []byte) {
	r.buf = append(r.buf, op)
	r.buf = binary.AppendUvarint(r.buf, uint64(len(b)))
	r.buf = append(r.buf, b...)
}

func (r *recorder) str(op byte, s string) {
	r.buf = append(r.buf, op)
	r.buf = binary.AppendUvarint(r.buf, uint64(len(s)))
	r.buf = append(r.buf, s...)
}

func (r *recorder) count(op byte, n int) {
	if n < 0 {
		n = 0
	}
	r.buf = append(r.buf, op)
	r.buf = binary.AppendUvarint(r.buf, uint64(n))
}

func (r *recorder) SimpleString(s string) { r.str(opSimple, s) }
func (r *recorder) Error(msg string)      { r.str(opError, msg) }
func (r *recorder) Int(n int64) {
	r.buf = append(r.buf, opInt)
	r.buf = binary.AppendVarint(r.buf, n)
}
func (r *recorder) Bulk(b []byte)       { r.bytes(opBulk, b) }
func (r *recorder) BulkString(s string) { r.str(opBulk, s) }
func (r *recorder) Null()               { r.buf = append(r.buf, opNull) }
func (r *recorder) NullArray()          { r.buf = append(r.buf, opNullArray) }
func (r *recorder) Array(n int)         { r.count(opArray, n) }
func (r *recorder) Map(n int)           { r.count(opMap, n) }
func (r *recorder) Set(n int)           { r.count(opSet, n) }
func (r *recorder) Double(f float64) {
	r.buf = append(r.buf, opDouble)
	r.buf = binary.LittleEndian.AppendUint64(r.buf, math.Float64bits(f))
}
func (r *recorder) Bool(b bool) {
	v := byte(0)
	if b {
		v = 1
	}
	r.buf = append(r.buf, opBool, v)
}
func (r *recorder) Verbatim(format string, s []byte) {
	r.str(opVerbatim, format)
	r.buf = binary.AppendUvarint(r.buf, uint64(len(s)))
	r.buf = append(r.buf, s...)
}
func (r *recorder) Push(n int)        { r.count(opPush, n) }
func (r *recorder) SetProtocol(v int) { r.count(opProtocol, v) }

// checkReply reports whether rec is a well-formed recording of whole
// replies: every opcode parses and every array, map, set and push is
// complete. replay runs only after it, so a client never sees half a reply.
func checkReply(rec []byte) bool {
	need := 0 // replies still owed to open aggregates
	var p replyParser
	p.b = rec
	for p.i < len(p.b) {
		op, _, n, ok := p.next()
		if !ok {
			return false
		}
		if op == opProtocol {
			continue // not a reply
		}
		if need > 0 {
			need--
		}
		switch op {
		case opArray, opSet, opPush:
			need += n
		case opMap:
			need += 2 * n
		}
		if need > len(p.b)-p.i {
			return false // more replies owed than bytes left to hold them
		}
	}
	return need == 0
}

// replay makes on w the calls recorded in rec, which checkReply accepted.
// Strings handed to w point into rec, so rec must never change afterwards:
// Forward gives each reply its own buffer and drops it after the replay. It
// does not allocate.
func replay(rec []byte, w ReplyWriter) {
	var p replyParser
	p.b = rec
	for p.i < len(p.b) {
		op, b, n, _ := p.next()
		switch op {
		case opSimple:
			w.SimpleString(unsafeString(b))
		case opError:
			w.Error(unsafeString(b))
		case opInt:
			w.Int(p.num)
		case opBulk:
			w.Bulk(b)
		case opNull:
			w.Null()
		case opNullArray:
			w.NullArray()
		case opArray:
			w.Array(n)
		case opMap:
			w.Map(n)
		case opSet:
			w.Set(n)
		case opDouble:
			w.Double(math.Float64frombits(uint64(p.num)))
		case opBool:
			w.Bool(n != 0)
		case opVerbatim:
			w.Verbatim(unsafeString(b), p.extra)
		case opPush:
			w.Push(n)
		case opProtocol:
			w.SetProtocol(n)
		}
	}
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// replyParser walks a recording.
type replyParser struct {
	b     []byte
	i     int
	num   int64  // opInt's value, opDouble's bits
	extra []byte // opVerbatim's text
}

// next decodes one opcode: its bytes (strings), count (aggregates, Bool,
// SetProtocol) or p.num (Int, Double).
func (p *replyParser) next() (op byte, b []byte, n int, ok bool) {
	op = p.b[p.i]
	p.i++
	switch op {
	case opSimple, opError, opBulk:
		b, ok = p.bytes()
		return op, b, 0, ok
	case opVerbatim:
		if b, ok = p.bytes(); !ok {
			return op, nil, 0, false
		}
		p.extra, ok = p.bytes()
		return op, b, 0, ok
	case opInt:
		v, k := binary.Varint(p.b[p.i:])
		if k <= 0 {
			return op, nil, 0, false
		}
		p.i += k
		p.num = v
		return op, nil, 0, true
	case opNull, opNullArray:
		return op, nil, 0, true
	case opArray, opMap, opSet, opPush, opProtocol:
		v, k := binary.Uvarint(p.b[p.i:])
		if k <= 0 || v > math.MaxInt32 {
			return op, nil, 0, false
		}
		p.i += k
		return op, nil, int(v), true
	case opDouble:
		if len(p.b)-p.i < 8 {
			return op, nil, 0, false
		}
		p.num = int64(binary.LittleEndian.Uint64(p.b[p.i:]))
		p.i += 8
		return op, nil, 0, true
	case opBool:
		if p.i >= len(p.b) || p.b[p.i] > 1 {
			return op, nil, 0, false
		}
		p.i++
		return op, nil, int(p.b[p.i-1]), true
	}
	return op, nil, 0, false
}

func (p *replyParser) bytes() ([]byte, bool) {
	v, k := binary.Uvarint(p.b[p.i:])
	if k <= 0 || v > uint64(len(p.b)-p.i-k) {
		return nil, false
	}
	p.i += k
	b := p.b[p.i : p.i+int(v) : p.i+int(v)]
	p.i += int(v)
	return b, true
}
