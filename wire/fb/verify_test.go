package fb

import (
	"encoding/binary"
	"testing"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// sampleRequest is a request message (no length prefix) with every kind of
// operation and every field set somewhere.
func sampleRequest() []byte {
	var b Batch
	b.Get("key")
	b.Set("key", []byte("value"), time.Second)
	b.CacheGet("cached", 2*time.Second)
	b.Throttle("bucket", node.Limit{Rate: 10, Period: time.Second, Burst: 5}, 2)
	b.auth("user", "password")
	return b.encode(42)[4:]
}

// sampleResponse is a response message to a request of 5 operations, with
// every field of Result set somewhere.
func sampleResponse() []byte {
	b := flatbuffers.NewBuilder(0)
	var offs []flatbuffers.UOffsetT
	v := b.CreateByteVector([]byte("value"))
	schema.ResultStart(b)
	schema.ResultAddValue(b, v)
	offs = append(offs, schema.ResultEnd(b))
	schema.ResultStart(b)
	offs = append(offs, schema.ResultEnd(b))
	v = b.CreateByteVector([]byte("stale"))
	schema.ResultStart(b)
	schema.ResultAddValue(b, v)
	schema.ResultAddCacheState(b, schema.CacheStateRevalidate)
	schema.ResultAddToken(b, 7)
	offs = append(offs, schema.ResultEnd(b))
	schema.ResultStart(b)
	schema.ResultAddDecision(b, schema.CreateDecision(b, true, 5, 0, 100, 500))
	offs = append(offs, schema.ResultEnd(b))
	e := b.CreateString("WRONGTYPE wrong")
	schema.ResultStart(b)
	schema.ResultAddError(b, e)
	offs = append(offs, schema.ResultEnd(b))
	schema.ResponseStartResultsVector(b, len(offs))
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	res := b.EndVector(len(offs))
	schema.ResponseStart(b)
	schema.ResponseAddId(b, 42)
	schema.ResponseAddResults(b, res)
	b.Finish(schema.ResponseEnd(b))
	return b.FinishedBytes()
}

// walkRequest reads every field of a verified request through the
// generated accessors, as the server does; a verifier gap panics here.
func walkRequest(msg []byte) (sum int) {
	var req schema.Request
	req.Init(msg, flatbuffers.GetUOffsetT(msg))
	sum += int(req.Id())
	var op schema.Op
	var thr schema.ThrottleArgs
	for i := range req.OpsLength() {
		req.Ops(&op, i)
		sum += int(op.Kind()) + len(op.KeyBytes()) + len(op.ValueBytes()) + int(op.TtlMs()) + int(op.LeaseMs())
		for j := range op.KeyLength() {
			sum += int(op.Key(j))
		}
		for j := range op.ValueLength() {
			sum += int(op.Value(j))
		}
		if op.Throttle(&thr) != nil {
			sum += int(thr.Limit() + thr.PeriodMs() + thr.Burst() + thr.Cost())
		}
	}
	return sum
}

// walkResponse reads every field of a verified response through the
// client's Result methods and the generated accessors.
func walkResponse(msg []byte, res []uint32) (sum int) {
	var resp schema.Response
	resp.Init(msg, flatbuffers.GetUOffsetT(msg))
	sum += int(resp.Id()) + len(resp.Error()) + resp.ResultsLength()
	var t schema.Result
	for i := range resp.ResultsLength() {
		resp.Results(&t, i)
		sum += len(t.ValueBytes()) + len(t.Error())
		for j := range t.ValueLength() {
			sum += int(t.Value(j))
		}
	}
	b := Batch{frame: msg, res: res}
	for i := range res {
		r := b.Result(i)
		v, _ := r.Value()
		d := r.Throttle()
		sum += len(v) + len(r.CacheState()) + int(r.Token()) + int(d.Limit+d.Remaining) + int(d.RetryAfter+d.ResetAfter)
		if err := r.Err(); err != nil {
			sum += len(err.Error())
		}
	}
	return sum
}

func TestVerifySamples(t *testing.T) {
	req := sampleRequest()
	id, ops, err := verifyRequest(req, MaxOps)
	if err != nil || id != 42 || ops != 5 {
		t.Fatalf("verifyRequest = %d, %d, %v", id, ops, err)
	}
	walkRequest(req)
	if _, _, err := verifyRequest(req, 4); err != errTooManyOps {
		t.Errorf("5 operations with a limit of 4: %v", err)
	}

	resp := sampleResponse()
	id, res, err := verifyResponse(resp, 5, nil)
	if err != nil || id != 42 || len(res) != 5 {
		t.Fatalf("verifyResponse = %d, %v, %v", id, res, err)
	}
	walkResponse(resp, res)
	if _, _, err := verifyResponse(resp, 4, nil); err != errResultCount {
		t.Errorf("5 results for 4 operations: %v", err)
	}
}

// TestVerifyMutations checks every truncation of the samples and every
// byte of them set to a few hostile values: the verifier never panics, and
// whatever it accepts the accessors read without panicking.
func TestVerifyMutations(t *testing.T) {
	for _, sample := range []struct {
		name  string
		msg   []byte
		check func(msg []byte) bool
	}{
		{"request", sampleRequest(), func(msg []byte) bool {
			if _, _, err := verifyRequest(msg, MaxOps); err != nil {
				return false
			}
			walkRequest(msg)
			return true
		}},
		{"response", sampleResponse(), func(msg []byte) bool {
			_, res, err := verifyResponse(msg, 5, nil)
			if err != nil {
				return false
			}
			walkResponse(msg, res)
			return true
		}},
	} {
		t.Run(sample.name, func(t *testing.T) {
			for n := range len(sample.msg) {
				if sample.check(sample.msg[:n:n]) && n < 8 {
					t.Errorf("a %d-byte prefix passes", n)
				}
			}
			accepted := 0
			for i := range sample.msg {
				for _, x := range []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, sample.msg[i] ^ 0x04, sample.msg[i] + 4} {
					msg := append([]byte(nil), sample.msg...)
					msg[i] = x
					if sample.check(msg) {
						accepted++
					}
				}
			}
			t.Logf("%d of %d mutations verify", accepted, 8*len(sample.msg))
		})
	}
}

// requestLayout locates the parts of sampleRequest a hostile buffer patches.
type requestLayout struct {
	root, rootVT     uint64 // the Request table and its vtable
	opsField, opsVec uint64 // the ops offset field and the vector it points to
	op, opVT         uint64 // the first Op and its vtable
	keyField, keyVec uint64 // its key offset field and the key vector

	throttle, throttleVT uint64 // the fourth Op, a THROTTLE, and its vtable
}

func layoutOf(t *testing.T, msg []byte) requestLayout {
	t.Helper()
	v := verifier{msg}
	var l requestLayout
	var err error
	var vsize uint64
	l.root, l.rootVT, vsize, err = v.root()
	if err != nil {
		t.Fatal(err)
	}
	l.opsField, _, _ = v.field(l.root, l.rootVT, vsize, slotRequestOps, 4)
	l.opsVec = l.opsField + v.u32(l.opsField)
	l.op = l.opsVec + 4 + v.u32(l.opsVec+4)
	l.opVT, vsize, err = v.table(l.op)
	if err != nil {
		t.Fatal(err)
	}
	l.keyField, _, _ = v.field(l.op, l.opVT, vsize, slotOpKey, 4)
	l.keyVec = l.keyField + v.u32(l.keyField)
	l.throttle = l.opsVec + 4 + 3*4 + v.u32(l.opsVec+4+3*4)
	if l.throttleVT, _, err = v.table(l.throttle); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestVerifyHostile patches a good request into each kind of hostile buffer
// and expects the verifier to name the problem.
func TestVerifyHostile(t *testing.T) {
	good := sampleRequest()
	l := layoutOf(t, good)
	u16 := func(at uint64, x uint16) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint16(b[at:], x) }
	}
	u32 := func(at uint64, x uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[at:], x) }
	}
	size := uint32(len(good))
	for _, tc := range []struct {
		name  string
		patch func([]byte)
		cut   int // bytes cut off the end
		want  error
	}{
		{"root offset past the end", u32(0, size), 0, errRoot},
		{"root offset 0xffffffff", u32(0, 0xffffffff), 0, errRoot},
		{"vtable far before the table", u32(l.root, 0x7fffffff), 0, errVtable},
		{"vtable after the end", u32(l.root, uint32(int32(-int64(size)))), 0, errVtable},
		{"vtable size odd", u16(l.rootVT, 7), 0, errVtable},
		{"vtable size below 4", u16(l.rootVT, 2), 0, errVtable},
		{"vtable size past the end", u16(l.rootVT, 0xfffe), 0, errVtable},
		{"table size past the end", u16(l.rootVT+2, 0xffff), 0, errVtable},
		{"field offset past the end", u16(l.opVT+4+2*slotOpKey, 0xfff0), 0, errField},
		{"struct field partly outside", u16(l.throttleVT+4+2*slotOpThrottle, uint16(uint64(size)-l.throttle-8)), 0, errField},
		{"vector offset past the end", u32(l.keyField, size), 0, errVector},
		{"vector offset wraps to the vtable", u32(l.keyField, uint32(int32(int64(l.opVT)-int64(l.keyField)))), 0, errVector},
		{"vector length 0xffffffff", u32(l.keyVec, 0xffffffff), 0, errVector},
		{"vector length one too many", u32(l.keyVec, size-uint32(l.keyVec)-4+1), 0, errVector},
		{"ops vector length huge", u32(l.opsVec, 1<<30), 0, errVector},
		{"op offset past the end", u32(l.opsVec+4, size), 0, errTable},
		{"op offset pointing at the vector itself", u32(l.opsVec+4, 0), 0, nil},
		{"truncated by one byte", nil, 1, nil},
		{"truncated to the root", nil, len(good) - 4, errRoot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := append([]byte(nil), good...)
			if tc.patch != nil {
				tc.patch(msg)
			}
			msg = msg[: len(msg)-tc.cut : len(msg)-tc.cut]
			_, _, err := verifyRequest(msg, MaxOps)
			switch {
			case tc.want != nil && err != tc.want:
				t.Errorf("err = %v, want %v", err, tc.want)
			case err == nil:
				walkRequest(msg) // whatever passes must be safe to read
			}
		})
	}
}

// TestVerifyWrappingOffset builds a buffer whose vector offset, added in
// the runtime's uint32 arithmetic, wraps around to a position inside the
// buffer: the runtime would read from there, the verifier must refuse.
func TestVerifyWrappingOffset(t *testing.T) {
	good := sampleRequest()
	l := layoutOf(t, good)
	msg := append([]byte(nil), good...)
	// keyField + x ≡ 0 (mod 2^32): the runtime would read a "vector" at
	// the start of the buffer, whose length is the root offset.
	x := uint32(1<<32 - l.keyField)
	binary.LittleEndian.PutUint32(msg[l.keyField:], x)
	if uint32(l.keyField)+x != 0 {
		t.Fatal("the offset does not wrap")
	}
	if _, _, err := verifyRequest(msg, MaxOps); err != errVector {
		t.Errorf("err = %v, want %v", err, errVector)
	}
}

func TestVerifyStrings(t *testing.T) {
	resp := sampleResponse()
	_, res, err := verifyResponse(resp, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The last result's error string: remove its terminating zero.
	v := verifier{resp}
	pos := uint64(res[4])
	vt, vsize, _ := v.table(pos)
	at, _, _ := v.field(pos, vt, vsize, slotResultError, 4)
	str := at + v.u32(at)
	msg := append([]byte(nil), resp...)
	msg[str+4+v.u32(str)] = 'x'
	if _, _, err := verifyResponse(msg, 5, nil); err != errString {
		t.Errorf("unterminated string: %v", err)
	}
	// A string ending exactly at the end of the buffer has no room for it.
	binary.LittleEndian.PutUint32(msg[str:], uint32(len(msg))-uint32(str)-4)
	if _, _, err := verifyResponse(msg, 5, nil); err != errString {
		t.Errorf("string to the end of the buffer: %v", err)
	}
}

// TestVerifyAllocs: verifying allocates nothing.
func TestVerifyAllocs(t *testing.T) {
	req, resp := sampleRequest(), sampleResponse()
	res := make([]uint32, 0, 8)
	if n := testing.AllocsPerRun(100, func() {
		verifyRequest(req, MaxOps)
		verifyResponse(resp, 5, res[:0])
	}); n != 0 {
		t.Errorf("%v allocations per verification", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		verifyRequest(req[:10], MaxOps)
		verifyRequest(nil, MaxOps)
	}); n != 0 {
		t.Errorf("%v allocations per refusal", n)
	}
}
