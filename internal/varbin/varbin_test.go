package varbin

import (
	"encoding/binary"
	"testing"
)

func TestReader(t *testing.T) {
	b := []byte{7}
	b = binary.BigEndian.AppendUint16(b, 513)
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	b = append(b, 'z')
	d := Reader{B: b}
	if d.Byte() != 7 || d.Uint16() != 513 || d.Uvarint() != 300 || d.Varint() != -5 {
		t.Fatal("numbers read back wrong")
	}
	s := d.Bytes()
	if string(s) != "abc" || cap(s) != 3 || d.Err || string(d.B) != "z" {
		t.Fatalf("bytes %q cap %d, err %v, rest %q", s, cap(s), d.Err, d.B)
	}
	// Overruns set Err and read zeros from then on.
	d = Reader{B: []byte{5, 'x'}}
	if d.Bytes() != nil || !d.Err || d.Byte() != 0 || d.Uvarint() != 0 || d.String() != "" {
		t.Fatal("a length past the end was read")
	}
	for _, short := range []func(*Reader){
		func(d *Reader) { d.Byte() }, func(d *Reader) { d.Uint16() },
		func(d *Reader) { d.Uvarint() }, func(d *Reader) { d.Varint() },
	} {
		d := Reader{B: nil}
		short(&d)
		if !d.Err {
			t.Error("a read of empty input did not set Err")
		}
	}
}
