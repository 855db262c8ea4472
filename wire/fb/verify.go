package fb

import "encoding/binary"

// The verifier. FlatBuffers' Go runtime reads whatever offsets a buffer
// holds and panics (or reads the wrong bytes) when they point elsewhere; it
// has no verifier. Frames come from the network, so before any generated
// accessor touches one, the functions here walk every table, vtable, vector
// and string the schema (sluice.fbs) lets the accessors reach and check that
// each lies inside the buffer, as flatbuffers::Verifier does in C++.
//
// A buffer that passes is safe for every accessor of the generated code,
// for every index below the vector lengths the verifier saw. What it checks:
//
//   - the root offset, and every offset to a table, vector or string, points
//     inside the buffer;
//   - a table's vtable lies inside the buffer, its size is even and at least
//     4, and the table's own size (vtable[1]) fits in the buffer;
//   - every field the schema knows, where the vtable has it, fits in the
//     buffer with its full width (scalars, structs, offsets);
//   - a vector's length times its element size fits after it; a string
//     also has its terminating zero inside the buffer;
//   - the number of operations (results) is within the limit.
//
// Fields a newer schema adds (vtable entries past the ones known here) are
// not read and so not checked. Alignment is not checked: the Go runtime
// reads scalars byte by byte and needs none. Arithmetic is done in uint64,
// so an offset that would wrap around 32 bits in the runtime's uint32
// arithmetic is out of the buffer here and rejected; this also bounds every
// position below the frame limit, well under the 2^31 the runtime assumes.
//
// The work is linear in the number of tables reached, which the limit on
// operations bounds; nothing is allocated.

// The vtable slots (field ids) of each table, as in sluice.fbs.
const (
	slotRequestID  = 0
	slotRequestOps = 1

	slotOpKind     = 0
	slotOpKey      = 1
	slotOpValue    = 2
	slotOpTTL      = 3
	slotOpLease    = 4
	slotOpThrottle = 5

	slotResponseID      = 0
	slotResponseResults = 1
	slotResponseError   = 2
	slotResponseEpoch   = 3
	slotResponseAddrs   = 4
	slotResponseRanges  = 5

	slotResultValue    = 0
	slotResultError    = 1
	slotResultState    = 2
	slotResultToken    = 3
	slotResultDecision = 4
)

// Sizes of the schema's structs and scalars on the wire.
const (
	sizeThrottleArgs = 32 // four longs
	sizeDecision     = 40 // a bool, padding to 8, four longs
	sizeSlotRange    = 6  // three ushorts
	sizeOffset       = 4
)

// frameError is why a frame was refused. The texts are constants, so
// refusing a frame allocates nothing.
type frameError string

func (e frameError) Error() string { return string(e) }

// The reasons a frame is refused. The server sends the text in the
// Response's error field before it closes the connection.
const (
	errShort       frameError = "ERR Protocol error: frame shorter than a FlatBuffers root offset"
	errRoot        frameError = "ERR Protocol error: root table outside the frame"
	errTable       frameError = "ERR Protocol error: table outside the frame"
	errVtable      frameError = "ERR Protocol error: vtable outside the frame or malformed"
	errField       frameError = "ERR Protocol error: field outside the frame"
	errVector      frameError = "ERR Protocol error: vector outside the frame"
	errString      frameError = "ERR Protocol error: string outside the frame or not terminated"
	errTooManyOps  frameError = "ERR Protocol error: too many operations in one request"
	errResultCount frameError = "ERR Protocol error: the response has a different number of results than the request had operations"
)

// verifier checks positions against one buffer. Positions are uint64 so
// that no sum of two uint32 offsets wraps.
type verifier struct {
	buf []byte
}

func (v verifier) size() uint64 { return uint64(len(v.buf)) }

func (v verifier) u16(at uint64) uint64 { return uint64(binary.LittleEndian.Uint16(v.buf[at:])) }
func (v verifier) u32(at uint64) uint64 { return uint64(binary.LittleEndian.Uint32(v.buf[at:])) }

// table checks the table at pos and its vtable and returns the vtable's
// position and size.
func (v verifier) table(pos uint64) (vt, vsize uint64, err error) {
	if pos+4 > v.size() {
		return 0, 0, errTable
	}
	// The table starts with a signed offset back to its vtable: vt = pos - soffset.
	soff := int64(int32(binary.LittleEndian.Uint32(v.buf[pos:])))
	at := int64(pos) - soff
	if at < 0 || uint64(at)+4 > v.size() {
		return 0, 0, errVtable
	}
	vt = uint64(at)
	vsize = v.u16(vt)
	tsize := v.u16(vt + 2)
	if vsize < 4 || vsize%2 != 0 || vt+vsize > v.size() || tsize < 4 || pos+tsize > v.size() {
		return 0, 0, errVtable
	}
	return vt, vsize, nil
}

// field returns the position of field slot of the table at pos, checking
// that width bytes of it lie in the buffer; ok is false for an absent field.
func (v verifier) field(pos, vt, vsize uint64, slot int, width uint64) (at uint64, ok bool, err error) {
	off := v.voffset(vt, vsize, slot) // 0 also when the vtable predates the field
	if off == 0 {
		return 0, false, nil
	}
	at = pos + off
	if at+width > v.size() {
		return 0, false, errField
	}
	return at, true, nil
}

// vector checks the vector an offset field points to, with elements of
// elem bytes, and returns where its elements start and how many there are.
func (v verifier) vector(pos, vt, vsize uint64, slot int, elem uint64) (start, n uint64, ok bool, err error) {
	at, ok, err := v.field(pos, vt, vsize, slot, sizeOffset)
	if !ok {
		return 0, 0, false, err
	}
	start, n, err = v.vectorAt(at, elem)
	return start, n, err == nil, err
}

// vectorAt checks the vector the offset at at (known to be in the buffer)
// points to.
func (v verifier) vectorAt(at, elem uint64) (start, n uint64, err error) {
	vec := at + v.u32(at)
	if vec+4 > v.size() {
		return 0, 0, errVector
	}
	n = v.u32(vec)
	start = vec + 4
	// n < 2^32 and elem <= 40, so the product cannot overflow.
	if start+n*elem > v.size() {
		return 0, 0, errVector
	}
	return start, n, nil
}

// str checks a string field: a byte vector followed by a zero byte.
func (v verifier) str(pos, vt, vsize uint64, slot int) error {
	at, ok, err := v.field(pos, vt, vsize, slot, sizeOffset)
	if !ok {
		return err
	}
	return v.strAt(at)
}

// strAt checks the string the offset at at points to.
func (v verifier) strAt(at uint64) error {
	start, n, err := v.vectorAt(at, 1)
	if err != nil {
		return err
	}
	if start+n >= v.size() || v.buf[start+n] != 0 {
		return errString
	}
	return nil
}

// The tables that repeat, one per operation or result, are checked through
// their shape: what their vtable says, worked out once per distinct vtable
// (a builder writes one per combination of fields present, so a message
// of 64 GETs has one). Per table, what is left is to find its vtable,
// check that the table and its fixed-width fields fit, and follow its two
// offset fields.

// A kind describes a repeated table: its fixed-width fields, and its two
// offset fields, [ubyte] vectors, the second a string when str is set.
type kind struct {
	fixed []fieldSpec
	vec   [2]int
	str   bool
}

type fieldSpec struct {
	slot  int
	width uint64
}

var (
	opTable = kind{
		fixed: []fieldSpec{{slotOpKind, 1}, {slotOpTTL, 8}, {slotOpLease, 8}, {slotOpThrottle, sizeThrottleArgs}},
		vec:   [2]int{slotOpKey, slotOpValue},
	}
	resultTable = kind{
		fixed: []fieldSpec{{slotResultState, 1}, {slotResultToken, 8}, {slotResultDecision, sizeDecision}},
		vec:   [2]int{slotResultValue, slotResultError},
		str:   true,
	}
)

// shape is what one vtable says about the tables that use it.
type shape struct {
	known bool
	vt    uint64    // the vtable's position
	tsize uint64    // the table's size, from the vtable
	end   uint64    // how far into the table the fixed-width fields reach
	vec   [2]uint64 // the offsets in the table of the two offset fields; 0 when absent
}

// repeated checks the table at pos, of kind k, using and updating the
// shape of the vtable it saw last.
func (v verifier) repeated(pos uint64, k *kind, sh *shape) error {
	if pos+4 > v.size() {
		return errTable
	}
	at := int64(pos) - int64(int32(binary.LittleEndian.Uint32(v.buf[pos:])))
	if at < 0 || uint64(at)+4 > v.size() {
		return errVtable
	}
	if vt := uint64(at); !sh.known || sh.vt != vt {
		vsize := v.u16(vt)
		if vsize < 4 || vsize%2 != 0 || vt+vsize > v.size() {
			return errVtable
		}
		*sh = shape{known: true, vt: vt, tsize: v.u16(vt + 2)}
		for _, f := range k.fixed {
			if off := v.voffset(vt, vsize, f.slot); off != 0 {
				sh.end = max(sh.end, off+f.width)
			}
		}
		for i, slot := range k.vec {
			if off := v.voffset(vt, vsize, slot); off != 0 {
				sh.vec[i] = off
				sh.end = max(sh.end, off+sizeOffset)
			}
		}
	}
	if sh.tsize < 4 || pos+sh.tsize > v.size() {
		return errVtable
	}
	if pos+sh.end > v.size() {
		return errField
	}
	for i, off := range sh.vec {
		if off == 0 {
			continue
		}
		var err error
		if i == 1 && k.str {
			err = v.strAt(pos + off)
		} else {
			_, _, err = v.vectorAt(pos+off, 1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// voffset reads the vtable entry of slot; 0 when absent.
func (v verifier) voffset(vt, vsize uint64, slot int) uint64 {
	entry := 4 + 2*uint64(slot)
	if entry >= vsize {
		return 0
	}
	return v.u16(vt + entry)
}

// root checks the root offset and the root table.
func (v verifier) root() (pos, vt, vsize uint64, err error) {
	if v.size() < 4 {
		return 0, 0, 0, errShort
	}
	pos = v.u32(0)
	if pos+4 > v.size() {
		return 0, 0, 0, errRoot
	}
	vt, vsize, err = v.table(pos)
	return pos, vt, vsize, err
}

// verifyRequest checks a Request message (a frame without its length
// prefix). It returns the request's id as soon as the root table and the id
// are known good, so that even a refusal can name the request, and the
// number of operations.
func verifyRequest(buf []byte, maxOps int) (id uint64, ops int, err error) {
	v := verifier{buf}
	pos, vt, vsize, err := v.root()
	if err != nil {
		return 0, 0, err
	}
	at, ok, err := v.field(pos, vt, vsize, slotRequestID, 8)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		id = binary.LittleEndian.Uint64(buf[at:])
	}
	start, n, _, err := v.vector(pos, vt, vsize, slotRequestOps, sizeOffset)
	if err != nil {
		return id, 0, err
	}
	if n > uint64(maxOps) {
		return id, 0, errTooManyOps
	}
	var sh shape
	for i := range n {
		elem := start + 4*i
		if err := v.repeated(elem+v.u32(elem), &opTable, &sh); err != nil {
			return id, 0, err
		}
	}
	return id, int(n), nil
}

// verifyResponse checks a Response message (a frame without its length
// prefix) that answers a request of ops operations, and appends the
// position of each result table to res. A response with an error field
// and no results answers a refused request; any other must have exactly
// ops results.
func verifyResponse(buf []byte, ops int, res []uint32) (id uint64, _ []uint32, err error) {
	id, res, _, err = verifyResults(buf, ops, res)
	return id, res, err
}

// verifyResults is verifyResponse that also reports whether any result
// has an error.
func verifyResults(buf []byte, ops int, res []uint32) (id uint64, _ []uint32, errs bool, err error) {
	v := verifier{buf}
	pos, vt, vsize, err := v.root()
	if err != nil {
		return 0, res, false, err
	}
	at, ok, err := v.field(pos, vt, vsize, slotResponseID, 8)
	if err != nil {
		return 0, res, false, err
	}
	if ok {
		id = binary.LittleEndian.Uint64(buf[at:])
	}
	if err := v.str(pos, vt, vsize, slotResponseError); err != nil {
		return id, res, false, err
	}
	if err := v.slotTable(pos, vt, vsize); err != nil {
		return id, res, false, err
	}
	start, n, present, err := v.vector(pos, vt, vsize, slotResponseResults, sizeOffset)
	if err != nil {
		return id, res, false, err
	}
	if !present {
		if _, refused, _ := v.field(pos, vt, vsize, slotResponseError, sizeOffset); refused {
			return id, res, false, nil
		}
	}
	if n != uint64(ops) {
		return id, res, false, errResultCount
	}
	var sh shape
	for i := range n {
		elem := start + 4*i
		rpos := elem + v.u32(elem)
		if err := v.repeated(rpos, &resultTable, &sh); err != nil {
			return id, res, false, err
		}
		res = append(res, uint32(rpos))
		errs = errs || sh.vec[1] != 0
	}
	return id, res, errs, nil
}

// slotTable checks a Response's slot table fields: the epoch, the vector of
// addresses (strings) and the vector of SlotRange structs. What the values
// mean (ranges within the slots, indexes within the addresses) is the
// client's to check when it reads them (Client.learn).
func (v verifier) slotTable(pos, vt, vsize uint64) error {
	if _, _, err := v.field(pos, vt, vsize, slotResponseEpoch, 8); err != nil {
		return err
	}
	start, n, _, err := v.vector(pos, vt, vsize, slotResponseAddrs, sizeOffset)
	if err != nil {
		return err
	}
	for i := range n {
		if err := v.strAt(start + 4*i); err != nil {
			return err
		}
	}
	_, _, _, err = v.vector(pos, vt, vsize, slotResponseRanges, sizeSlotRange)
	return err
}
