package fb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// fuzzNode is a node for fuzzing: small, with eviction, so that the SETs
// of a long run do not grow it without bound.
func fuzzNode(f *testing.F) *node.Node {
	n, err := node.New(node.Config{MaxMemory: 32 << 20, MaxMemoryPolicy: "allkeys-lru", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// seedRequests are request messages (no length prefix): one per kind of
// operation, with and without its optional fields, an unknown kind, and all
// of them in one request.
func seedRequests() [][]byte {
	adds := []func(b *Batch){
		func(b *Batch) { b.Get("k") },
		func(b *Batch) { b.Get("") },
		func(b *Batch) { b.CacheGet("k", 0) },
		func(b *Batch) { b.CacheGet("k", time.Second) },
		func(b *Batch) { b.Throttle("k", node.Limit{Rate: 10, Period: time.Second}, 1) },
		func(b *Batch) { b.Throttle("k", node.Limit{Rate: 10, Period: time.Second, Burst: 20}, 0) },
		func(b *Batch) { b.Set("k", []byte("v"), 0) },
		func(b *Batch) { b.Set("k", nil, time.Minute) },
		func(b *Batch) { b.auth("", "pw") },
		func(b *Batch) { b.slots() },
		func(b *Batch) { b.Get("k"); b.ops[0].kind = 99 },
	}
	var msgs [][]byte
	var all Batch
	for _, add := range adds {
		var b Batch
		add(&b)
		msgs = append(msgs, b.encode(7)[4:])
		add(&all)
	}
	return append(msgs, all.encode(8)[4:], sampleRequest())
}

// addSeeds adds msgs and a few hostile messages.
func addSeeds(f *testing.F, msgs ...[]byte) {
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 32))
}

// FuzzRequest runs arbitrary request messages through the server's request
// path (verifier, operations against a node, response builder) and checks
// that nothing panics and that every response it builds verifies.
func FuzzRequest(f *testing.F) {
	n := fuzzNode(f)
	sess, err := n.Connect(nil, "fuzz", "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	var r runner
	r.init(&Server{node: n, maxFrame: 1 << 20}, sess)
	addSeeds(f, seedRequests()...)
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, ops, reqErr := verifyRequest(msg, MaxOps)
		if reqErr == nil {
			walkRequest(msg)
		}
		out, fatal := r.handle(nil, msg)
		if fatal != (reqErr != nil && reqErr != errTooManyOps) {
			t.Fatalf("fatal = %v for a request that verifies with %v", fatal, reqErr)
		}
		if len(out) < 4 || int(binary.LittleEndian.Uint32(out)) != len(out)-4 {
			t.Fatalf("response frame of %d bytes with length %d", len(out), binary.LittleEndian.Uint32(out))
		}
		if reqErr != nil {
			ops = 0
		}
		_, res, err := verifyResponse(out[4:], ops, nil)
		if err != nil {
			t.Fatalf("the server built a response that does not verify: %v", err)
		}
		walkResponse(out[4:], res)
	})
}

// FuzzResponse checks the client's side: arbitrary response messages, for
// requests of up to 255 operations, either fail verification or are safe to
// read through every Result method.
func FuzzResponse(f *testing.F) {
	for _, m := range [][]byte{sampleResponse(), {}, {4, 0, 0, 0}} {
		f.Add(m, uint8(5))
	}
	// What the server answers to the seed requests, and a refusal.
	n := fuzzNode(f)
	sess, err := n.Connect(nil, "fuzz", "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	var r runner
	r.init(&Server{node: n, maxFrame: 1 << 20}, sess)
	for _, req := range seedRequests() {
		_, ops, _ := verifyRequest(req, MaxOps)
		out, _ := r.handle(nil, req)
		f.Add(out[4:], uint8(ops))
	}
	f.Add(r.refusal(nil, 3, string(errTooManyOps))[4:], uint8(0))
	f.Fuzz(func(t *testing.T, msg []byte, ops uint8) {
		_, res, err := verifyResponse(msg, int(ops), nil)
		if err != nil {
			return
		}
		walkResponse(msg, res)
	})
}

// FuzzStream writes arbitrary bytes to a live server connection: framing,
// partial frames, many frames, hostile ones. The connection must end (the
// server closes it or answers until the input ends) and the server must go
// on serving others.
func FuzzStream(f *testing.F) {
	n := fuzzNode(f)
	s, err := NewServer(n, Config{Addr: "127.0.0.1:0", MaxFrame: 1 << 16, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	go s.Serve()
	f.Cleanup(func() { s.Close(context.Background()) })

	var b Batch
	b.Get("k")
	get := b.encode(1)
	f.Add(get)
	f.Add(append(append([]byte(nil), get...), get...))
	f.Add(get[:len(get)-1])
	f.Add(binary.LittleEndian.AppendUint32(nil, 1<<16+1))
	f.Add(append(binary.LittleEndian.AppendUint32(nil, uint32(len(sampleRequest()))), sampleRequest()...))
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			nc.Write(data)
			nc.(*net.TCPConn).CloseWrite()
		}()
		// A reset is an ending too; only a timeout means the server hangs.
		var ne net.Error
		if _, err := io.Copy(io.Discard, nc); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server did not end the connection: %v", err)
		}
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(get)
		if id, _ := readResponse(t, c, 1); id != 1 {
			t.Fatalf("the server answers with id %d", id)
		}
	})
}
