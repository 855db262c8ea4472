package cluster

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// startLoopback starts n nodes on 127.0.0.1 with real sockets (memberlist's
// UDP and TCP transport, raft's TCP transport), every port picked free by
// the kernel. secret is every node's ClusterSecret.
func startLoopback(tb testing.TB, n int, logs *syncBuffer, secret []byte) []*testNode {
	tb.Helper()
	var nodes []*testNode
	tb.Cleanup(func() {
		for _, n := range nodes {
			n.c.Close()
		}
	})
	for i := range n {
		name := "n" + string(rune('1'+i))
		cfg := Config{
			NodeID:   name,
			BindAddr: "127.0.0.1",
			Replicas: -1,
			Meta:     Meta{RESPAddr: "127.0.0.1:6379"},
			Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("at", name),
			Timing:   FastTiming(),

			ClusterSecret: secret,
		}
		if i > 0 {
			cfg.Join = []string{nodes[0].c.Self().GossipAddr}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		h := &fakeHandler{id: name}
		c, err := Start(ctx, cfg, h)
		cancel()
		if err != nil {
			tb.Fatalf("start %s: %v", name, err)
		}
		h.c = c
		nodes = append(nodes, &testNode{name: name, c: c, h: h})
	}
	return nodes
}

func TestLoopback(t *testing.T) {
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", logs.String())
		}
	})
	start := time.Now()
	nodes := startLoopback(t, 3, logs, nil)
	_, d := waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	t.Logf("loopback: 3 nodes started and converged in %v (%v after the last Start)", time.Since(start).Round(time.Millisecond), d.Round(time.Millisecond))
	for _, n := range nodes {
		if self := n.c.Self(); self.ClusterAddr == "" || self.GossipAddr == "" {
			t.Errorf("%s: %+v", n.name, self)
		}
	}
	var w traceWriter
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[0].c.Forward(ctx, "n3", [][]byte{[]byte("nested")}, &w); err != nil {
		t.Fatal(err)
	}
	var direct traceWriter
	replies["nested"](&direct)
	if w.String() != direct.String() {
		t.Errorf("forwarded %s", w.String())
	}
}

// BenchmarkForwardLoopback is a forwarded command's round trip over real
// TCP on loopback, with many in flight (b.RunParallel) on the pooled
// connections.
func BenchmarkForwardLoopback(b *testing.B) {
	nodes := startLoopback(b, 2, &syncBuffer{}, nil)
	waitConverged(b, 10*time.Second, nodes, "n1", "n2")
	c := nodes[0].c
	args := [][]byte{[]byte("echo"), make([]byte, 64)}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Forward(ctx, "n2", args, discard{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		var once sync.Once
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Forward(ctx, "n2", args, discard{}); err != nil {
					once.Do(func() { b.Error(err) })
					return
				}
			}
		})
	})
}
