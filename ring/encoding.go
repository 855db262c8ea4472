package ring

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
)

// encodingVersion is the first byte of an encoded table.
const encodingVersion = 1

// MarshalBinary encodes the table for raft's log and snapshots. Slots that
// share an owner and replicas are stored as runs, because neighbouring slots
// mostly do (see Compute): a table of 3 nodes with one replica takes about
// 1.5 KiB, of 100 nodes 38 KiB and of 1,000 nodes, where runs are mostly one
// slot long, 86 KiB. The format is, in unsigned varints:
//
//	version (1), epoch, replicas per slot k, members n,
//	n × (ID length, ID bytes, weight),
//	runs of (length, owner, k × replica) covering every slot in order,
//	with members as indexes into the list, and no runs when n is 0.
//
// The encoding is canonical: equal tables encode to equal bytes. It never
// returns an error.
func (t *Table) MarshalBinary() ([]byte, error) {
	b := []byte{encodingVersion}
	b = binary.AppendUvarint(b, t.Epoch)
	b = binary.AppendUvarint(b, uint64(t.k))
	b = binary.AppendUvarint(b, uint64(len(t.members)))
	for _, m := range t.members {
		b = binary.AppendUvarint(b, uint64(len(m.ID)))
		b = append(b, m.ID...)
		b = binary.AppendUvarint(b, uint64(m.Weight))
	}
	if len(t.members) == 0 {
		return b, nil
	}
	for s := 0; s < Slots; {
		e := s + 1
		for e < Slots && t.sameSlot(s, e) {
			e++
		}
		b = binary.AppendUvarint(b, uint64(e-s))
		b = binary.AppendUvarint(b, uint64(t.owner[s]))
		for _, r := range t.repIdx[s*t.k : (s+1)*t.k] {
			b = binary.AppendUvarint(b, uint64(r))
		}
		s = e
	}
	return b, nil
}

// sameSlot reports whether slots a and b have the same owner and replicas.
func (t *Table) sameSlot(a, b int) bool {
	return t.owner[a] == t.owner[b] &&
		slices.Equal(t.repIdx[a*t.k:(a+1)*t.k], t.repIdx[b*t.k:(b+1)*t.k])
}

// UnmarshalBinary decodes a table that MarshalBinary encoded, into a new
// Table (new(ring.Table)). The bytes may come from a peer or a damaged disk,
// so it checks everything a computed table guarantees except the load
// bounds: members sorted, unique and within the limits, every slot covered
// once, replicas distinct and never the owner. It returns ErrBadEncoding, and
// leaves t unchanged, for anything else.
func (t *Table) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if d.byte() != encodingVersion {
		return ErrBadEncoding
	}
	u := &Table{Epoch: d.uvarint()}
	k := d.uvarint()
	n := d.uvarint()
	if d.bad || k > MaxReplicas || n > MaxTotalWeight || (n == 0 && k != 0) || (n > 0 && k > n-1) {
		return ErrBadEncoding
	}
	u.k = int(k)
	u.members = make([]Member, 0, n)
	weights := uint64(0)
	for range n {
		id := d.bytes(d.uvarint())
		w := d.uvarint()
		weights += w
		if d.bad || len(id) == 0 || w < 1 || w > MaxWeight || weights > MaxTotalWeight ||
			len(u.members) > 0 && strings.Compare(u.members[len(u.members)-1].ID, string(id)) >= 0 {
			return ErrBadEncoding
		}
		u.members = append(u.members, Member{ID: string(id), Weight: int(w)})
	}
	if n > 0 {
		u.repIdx = make([]uint16, Slots*u.k)
		for s := 0; s < Slots; {
			length := d.uvarint()
			if d.bad || length < 1 || length > uint64(Slots-s) {
				return ErrBadEncoding
			}
			owner := d.uvarint()
			reps := u.repIdx[s*u.k : (s+1)*u.k]
			for i := range reps {
				r := d.uvarint()
				if d.bad || r >= n || r == owner || slices.Contains(reps[:i], uint16(r)) {
					return ErrBadEncoding
				}
				reps[i] = uint16(r)
			}
			if d.bad || owner >= n {
				return ErrBadEncoding
			}
			u.owner[s] = uint16(owner)
			if s > 0 && u.sameSlot(s-1, s) {
				return ErrBadEncoding // not a maximal run: not canonical
			}
			for i := s + 1; i < s+int(length); i++ {
				u.owner[i] = u.owner[s]
				copy(u.repIdx[i*u.k:(i+1)*u.k], reps)
			}
			s += int(length)
		}
	}
	if d.bad || len(d.b) != 0 {
		return ErrBadEncoding
	}
	u.fillIDs()
	*t = *u
	return nil
}

// decoder reads unsigned varints and byte strings, turning bad on the first
// truncated, overlong or non-minimal one.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	// Reject overflow, truncation, and encodings longer than needed, so that
	// every table has exactly one encoding.
	if n <= 0 || n != (bits.Len64(v|1)+6)/7 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}
