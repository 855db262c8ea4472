// Package varbin reads the compact binary layouts of Sluice's cluster
// state and replication messages: single bytes, big-endian uint16s,
// uvarints, varints, and uvarint-prefixed byte strings (as
// encoding/binary's Append functions write them).
//
// A Reader never panics on short or malformed input: the first overrun sets
// Err, and every read after it returns a zero value, so a decoder can read a
// whole record and check Err once.
package varbin

import "encoding/binary"

// Reader reads from B, which shrinks as it reads.
type Reader struct {
	B   []byte
	Err bool
}

// Byte reads one byte.
func (d *Reader) Byte() byte {
	if len(d.B) < 1 {
		d.fail()
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

// Uint16 reads a big-endian uint16.
func (d *Reader) Uint16() uint16 {
	if len(d.B) < 2 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(d.B)
	d.B = d.B[2:]
	return v
}

// Uvarint reads an unsigned varint.
func (d *Reader) Uvarint() uint64 {
	v, k := binary.Uvarint(d.B)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[k:]
	return v
}

// Varint reads a signed (zig-zag) varint.
func (d *Reader) Varint() int64 {
	v, k := binary.Varint(d.B)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[k:]
	return v
}

// Bytes reads a uvarint length and that many bytes. The result is a slice
// of B, capped so that appending to it cannot overwrite what follows.
func (d *Reader) Bytes() []byte {
	n := d.Uvarint()
	if d.Err || n > uint64(len(d.B)) {
		d.fail()
		return nil
	}
	s := d.B[:n:n]
	d.B = d.B[n:]
	return s
}

// fail records an overrun; nothing is left to read after it.
func (d *Reader) fail() {
	d.Err = true
	d.B = nil
}

// String reads what Bytes reads, as a string.
func (d *Reader) String() string { return string(d.Bytes()) }
