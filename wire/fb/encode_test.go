package fb

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// encodeBuilder is encode written with the FlatBuffers builder, as the
// generated code intends: the reference the hand-written encoder is checked
// against.
func (b *Batch) encodeBuilder(id uint64) []byte {
	bld := flatbuffers.NewBuilder(builderSize)
	var offs []flatbuffers.UOffsetT
	for i := range b.ops {
		op := &b.ops[i]
		key := bld.CreateByteVector(b.arena[op.key.off:op.key.end])
		var val flatbuffers.UOffsetT
		if op.hasVal {
			val = bld.CreateByteVector(b.arena[op.val.off:op.val.end])
		}
		schema.OpStart(bld)
		schema.OpAddKind(bld, op.kind)
		schema.OpAddKey(bld, key)
		if op.hasVal {
			schema.OpAddValue(bld, val)
		}
		schema.OpAddTtlMs(bld, op.ttl)
		schema.OpAddLeaseMs(bld, op.lease)
		if op.kind == schema.OpKindThrottle {
			t := &op.throttle
			schema.OpAddThrottle(bld, schema.CreateThrottleArgs(bld, t[0], t[1], t[2], t[3]))
		}
		offs = append(offs, schema.OpEnd(bld))
	}
	schema.RequestStartOpsVector(bld, len(offs))
	for i := len(offs) - 1; i >= 0; i-- {
		bld.PrependUOffsetT(offs[i])
	}
	ops := bld.EndVector(len(offs))
	schema.RequestStart(bld)
	schema.RequestAddId(bld, id)
	schema.RequestAddOps(bld, ops)
	bld.FinishSizePrefixed(schema.RequestEnd(bld))
	return bld.FinishedBytes()
}

// decodedOp is an Op as the generated accessors read it.
type decodedOp struct {
	kind        schema.OpKind
	key, value  []byte
	hasValue    bool
	ttl, lease  int64
	throttle    [4]int64
	hasThrottle bool
}

// decodeRequest verifies a request message and reads it back.
func decodeRequest(t *testing.T, msg []byte) (uint64, []decodedOp) {
	t.Helper()
	id, n, err := verifyRequest(msg, MaxOps)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var req schema.Request
	req.Init(msg, flatbuffers.GetUOffsetT(msg))
	if req.Id() != id || req.OpsLength() != n {
		t.Fatalf("id %d, %d ops; verifier saw %d, %d", req.Id(), req.OpsLength(), id, n)
	}
	ops := make([]decodedOp, n)
	var op schema.Op
	for i := range ops {
		req.Ops(&op, i)
		d := &ops[i]
		d.kind, d.key, d.value = op.Kind(), op.KeyBytes(), op.ValueBytes()
		d.hasValue = d.value != nil
		d.ttl, d.lease = op.TtlMs(), op.LeaseMs()
		var th schema.ThrottleArgs
		if op.Throttle(&th) != nil {
			d.hasThrottle = true
			d.throttle = [4]int64{th.Limit(), th.PeriodMs(), th.Burst(), th.Cost()}
		}
	}
	return id, ops
}

// TestEncodeMatchesBuilder: the hand-written request encoder and the
// FlatBuffers builder encode the same batches to messages that read back
// the same, and the encoder aligns every table and scalar as the builder
// does.
func TestEncodeMatchesBuilder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() string {
		k := make([]byte, rng.IntN(40))
		for i := range k {
			k[i] = byte(rng.IntN(256))
		}
		return string(k)
	}
	var batches []*Batch
	for range 300 {
		var b Batch
		for range 1 + rng.IntN(20) {
			switch rng.IntN(7) {
			case 0:
				b.Get(key())
			case 1:
				b.CacheGet(key(), time.Duration(rng.IntN(3))*time.Second)
			case 2:
				b.Throttle(key(), node.Limit{Rate: rng.Int64N(100), Period: time.Duration(rng.IntN(5000)) * time.Millisecond, Burst: rng.Int64N(3)}, rng.Int64N(3))
			case 3:
				b.Set(key(), []byte(key()), time.Duration(rng.IntN(2))*time.Minute)
			case 4:
				b.auth(key(), key())
			case 5:
				b.slots()
			case 6:
				b.Get(key())
				b.ops[len(b.ops)-1].kind = schema.OpKind(rng.IntN(256))
			}
		}
		batches = append(batches, &b)
	}
	for i, b := range batches {
		id := rng.Uint64()
		got := append([]byte(nil), b.encode(id)...)
		want := b.encodeBuilder(id)
		if n := int(flatbuffers.GetUint32(got)); n != len(got)-4 {
			t.Fatalf("batch %d: length prefix %d, frame %d", i, n, len(got))
		}
		gid, gops := decodeRequest(t, got[4:])
		wid, wops := decodeRequest(t, want[4:])
		if gid != wid || len(gops) != len(wops) {
			t.Fatalf("batch %d: id %d, %d ops; builder: %d, %d", i, gid, len(gops), wid, len(wops))
		}
		for j := range gops {
			g, w := gops[j], wops[j]
			if g.kind != w.kind || !bytes.Equal(g.key, w.key) || g.hasValue != w.hasValue || !bytes.Equal(g.value, w.value) ||
				g.ttl != w.ttl || g.lease != w.lease || g.hasThrottle != w.hasThrottle || g.throttle != w.throttle {
				t.Fatalf("batch %d op %d: %+v, builder %+v", i, j, g, w)
			}
		}
		checkAligned(t, got)
	}
}

// checkAligned checks that the tables of a request frame and their wide
// fields are aligned from the frame's start.
func checkAligned(t *testing.T, frame []byte) {
	t.Helper()
	msg := frame[4:]
	var req schema.Request
	req.Init(msg, flatbuffers.GetUOffsetT(msg))
	rt := req.Table()
	if o := rt.Offset(4); o == 0 || (4+int(rt.Pos)+int(o))%8 != 0 {
		t.Fatalf("the request id is not 8-aligned")
	}
	var op schema.Op
	for i := range req.OpsLength() {
		req.Ops(&op, i)
		tab := op.Table()
		if (4+tab.Pos)%4 != 0 {
			t.Fatalf("op %d's table at %d", i, tab.Pos)
		}
		for _, slot := range []flatbuffers.VOffsetT{10, 12, 14} { // ttl, lease, throttle
			if o := tab.Offset(slot); o != 0 && (4+int(tab.Pos)+int(o))%8 != 0 {
				t.Fatalf("op %d: field at vtable slot %d is not 8-aligned", i, slot)
			}
		}
		if o := tab.Offset(6); o != 0 {
			if v := 4 + int(tab.Vector(flatbuffers.UOffsetT(o))) - 4; v%4 != 0 {
				t.Fatalf("op %d's key vector at %d", i, v)
			}
		}
	}
}

// TestFastResults runs a request mixing GETs and CACHE.GETs of present,
// missing and stale keys through the server, whose hot results after the
// first of each shape are laid out by hand, and reads every result back.
func TestFastResults(t *testing.T) {
	n, keys := benchNode(t)
	if err := n.Set(t.Context(), "plain", []byte("plain value"), 0); err != nil {
		t.Fatal(err)
	}
	sess, err := n.Connect(nil, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	var r runner
	r.init(&Server{node: n, maxFrame: DefaultMaxFrame}, sess)
	var b Batch
	type want struct {
		value string
		found bool
		state node.CacheState
	}
	var wants []want
	for i, k := range keys {
		v, _ := n.Do(t.Context(), "GET", k)
		val := string(v.([]byte))
		switch i % 4 {
		case 0:
			b.Get(k)
			wants = append(wants, want{val, true, ""})
		case 1:
			b.CacheGet(k, 0)
			wants = append(wants, want{val, true, node.CacheFresh})
		case 2:
			b.Get("missing")
			wants = append(wants, want{"", false, ""})
		case 3:
			b.Get("plain")
			wants = append(wants, want{"plain value", true, ""})
		}
	}
	out, _ := r.handle(nil, b.encode(1)[4:])
	b.frame = out[4:]
	if _, b.res, err = verifyResponse(b.frame, len(wants), nil); err != nil {
		t.Fatal(err)
	}
	for i, w := range wants {
		res := b.Result(i)
		v, ok := res.Value()
		if err := res.Err(); err != nil || ok != w.found || string(v) != w.value || res.CacheState() != w.state {
			t.Errorf("result %d: %q %v %q %v, want %+v", i, v, ok, res.CacheState(), err, w)
		}
	}
}
