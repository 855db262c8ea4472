package fb

import (
	"encoding/binary"

	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// The request encoder. It writes a Request front to back into one reused
// buffer, by hand, rather than through flatbuffers.Builder: the builder's
// generic machinery (a vtable assembled per table, then compared with every
// vtable written so far) cost three quarters of the client's time per
// operation. The result is an ordinary FlatBuffers message, the same that
// the builder makes but for where things lie: every offset to a table,
// vector or string points forward, as the format requires, each shape of
// operation (which optional fields it has) gets one vtable, written before
// the first operation of that shape, and every scalar is aligned to its
// size from the start of the frame (the length prefix), as the builder
// aligns a size-prefixed buffer. TestEncodeMatchesBuilder reads both
// encodings back through the generated accessors and compares them.
//
// The frame:
//
//	0   length prefix (uint32)
//	4   root offset -> 16
//	8   Request vtable: size 8, table size 16, id at 8, ops at 4
//	16  Request table: soffset 8, ops offset -> 32, (pad), id (uint64) at 24
//	32  ops vector: n, then n offsets, one per Op table
//	    then each operation: its vtable when its shape is new, padding, the
//	    Op table, its key vector, its value vector.
//
// An Op table: soffset, key offset, [value offset], kind (a byte), padding
// to 8, then [ttl_ms], [lease_ms], [throttle] as the operation has them. A
// field equal to its default (ttl_ms 0, lease_ms 0) is left out, as the
// builder leaves it out.

// The optional parts of an Op, a bit each: an operation's shape.
const (
	shapeValue = 1 << iota
	shapeTTL
	shapeLease
	shapeThrottle
	shapes = 1 << iota
)

// opVtableSize is the size of an Op vtable: 4 bytes of sizes and one
// voffset for each of the six fields.
const opVtableSize = 4 + 2*6

// encode builds the request frame (length prefix included) with id in the
// batch's buffer and returns it. It allocates nothing once the buffer has
// grown to the batch's size.
func (b *Batch) encode(id uint64) []byte {
	n := len(b.ops)
	size := 32 + 4 + 4*n + shapes*(opVtableSize+6)
	for i := range b.ops {
		op := &b.ops[i]
		// table (at most 64) and padding, key and value vectors with padding
		size += 64 + 7 + 4 + (op.key.end - op.key.off) + 3 + 4 + (op.val.end - op.val.off) + 3
	}
	buf := b.enc[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = buf[:size] // written by position below; cut to the end at the finish
	le := binary.LittleEndian

	le.PutUint32(buf[4:], 16-4) // root: the Request table at 16
	// Request vtable at 8.
	le.PutUint16(buf[8:], 8)
	le.PutUint16(buf[10:], 16)
	le.PutUint16(buf[12:], 8) // id
	le.PutUint16(buf[14:], 4) // ops
	// Request table at 16.
	le.PutUint32(buf[16:], 16-8)
	le.PutUint32(buf[20:], 32-20)
	le.PutUint64(buf[24:], id)
	// The ops vector at 32.
	le.PutUint32(buf[32:], uint32(n))
	p := 36 + 4*n

	var vtables [shapes]int // position of each shape's vtable, 0 for none yet
	for i := range b.ops {
		op := &b.ops[i]
		shape := 0
		if op.hasVal {
			shape |= shapeValue
		}
		if op.ttl != 0 {
			shape |= shapeTTL
		}
		if op.lease != 0 {
			shape |= shapeLease
		}
		if op.kind == schema.OpKindThrottle {
			shape |= shapeThrottle
		}
		// The table's layout.
		at := 8 // soffset, key
		valAt := 0
		if shape&shapeValue != 0 {
			valAt, at = at, at+4
		}
		kindAt := at
		at++
		wide := shape&(shapeTTL|shapeLease|shapeThrottle) != 0
		ttlAt, leaseAt, thrAt := 0, 0, 0
		if wide {
			at = (at + 7) &^ 7
			if shape&shapeTTL != 0 {
				ttlAt, at = at, at+8
			}
			if shape&shapeLease != 0 {
				leaseAt, at = at, at+8
			}
			if shape&shapeThrottle != 0 {
				thrAt, at = at, at+32
			}
		} else {
			at = (at + 3) &^ 3
		}
		tsize := at

		vt := vtables[shape]
		if vt == 0 {
			p = (p + 1) &^ 1
			vt = p
			vtables[shape] = vt
			le.PutUint16(buf[p:], opVtableSize)
			le.PutUint16(buf[p+2:], uint16(tsize))
			le.PutUint16(buf[p+4:], uint16(kindAt))
			le.PutUint16(buf[p+6:], 4)
			le.PutUint16(buf[p+8:], uint16(valAt))
			le.PutUint16(buf[p+10:], uint16(ttlAt))
			le.PutUint16(buf[p+12:], uint16(leaseAt))
			le.PutUint16(buf[p+14:], uint16(thrAt))
			p += opVtableSize
		}
		// The table, aligned to its widest scalar.
		align := 3
		if wide {
			align = 7
		}
		for p&align != 0 {
			buf[p] = 0
			p++
		}
		t := p
		clear(buf[t : t+tsize])
		le.PutUint32(buf[36+4*i:], uint32(t-(36+4*i)))
		le.PutUint32(buf[t:], uint32(int32(t-vt)))
		buf[t+kindAt] = byte(op.kind)
		if ttlAt != 0 {
			le.PutUint64(buf[t+ttlAt:], uint64(op.ttl))
		}
		if leaseAt != 0 {
			le.PutUint64(buf[t+leaseAt:], uint64(op.lease))
		}
		if thrAt != 0 {
			for k, v := range op.throttle {
				le.PutUint64(buf[t+thrAt+8*k:], uint64(v))
			}
		}
		p += tsize
		// The key, then the value.
		le.PutUint32(buf[t+4:], uint32(p-(t+4)))
		p = putBytes(buf, p, b.arena[op.key.off:op.key.end])
		if valAt != 0 {
			le.PutUint32(buf[t+valAt:], uint32(p-(t+valAt)))
			p = putBytes(buf, p, b.arena[op.val.off:op.val.end])
		}
	}
	buf = buf[:p]
	le.PutUint32(buf, uint32(p-4))
	b.enc = buf
	return buf
}

// putBytes writes a [ubyte] vector at p, which is 4-aligned, and returns
// the 4-aligned position after it.
func putBytes(buf []byte, p int, v []byte) int {
	binary.LittleEndian.PutUint32(buf[p:], uint32(len(v)))
	p += 4 + copy(buf[p+4:], v)
	for p&3 != 0 {
		buf[p] = 0
		p++
	}
	return p
}
