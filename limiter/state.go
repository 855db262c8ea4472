package limiter

import "encoding/binary"

// State is what a bucket's record stores: its theoretical arrival time (TAT),
// the Unix nanosecond at which it will be full again. A TAT at or before now
// is a full bucket, so the zero State stands for an absent record.
type State struct {
	TAT int64
}

// StateSize is the length of an encoded State: a version byte, then the TAT
// as 8 bytes little-endian. The size is fixed so the node can encode into a
// buffer on its stack.
const StateSize = 9

// stateVersion tags the encoding, so a later algorithm can tell old records
// from its own.
const stateVersion = 1

// Decode reads a State from a record's value bytes. Anything but StateSize
// bytes starting with the current version is ErrCorrupt; every TAT value is
// accepted, since Decide copes with any.
func Decode(b []byte) (State, error) {
	if len(b) != StateSize || b[0] != stateVersion {
		return State{}, ErrCorrupt
	}
	return State{TAT: int64(binary.LittleEndian.Uint64(b[1:]))}, nil
}

// Append appends the StateSize-byte encoding of s to dst and returns the
// extended slice.
func (s State) Append(dst []byte) []byte {
	dst = append(dst, stateVersion)
	return binary.LittleEndian.AppendUint64(dst, uint64(s.TAT))
}

// ExpireAtMillis returns when the record may be dropped, in Unix
// milliseconds as the store takes it: the TAT rounded up, so the record
// outlives the tokens it holds back (dropping it earlier would refill the
// bucket early). It is at least 1, since the store reads 0 as no expiry.
func (s State) ExpireAtMillis() int64 {
	ms := s.TAT / 1e6
	if s.TAT%1e6 > 0 {
		ms++
	}
	return max(ms, 1)
}
