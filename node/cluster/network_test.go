package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestStartGossipPortTaken: a second node started on a machine whose
// gossip port is already bound (two nodes on defaults) fails with an
// error naming the port, not a panic while cleaning up.
func TestStartGossipPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{
		NodeID:     "n1",
		BindAddr:   "127.0.0.1",
		GossipPort: port,
		Meta:       Meta{RESPAddr: "127.0.0.1:6379"},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Timing:     FastTiming(),
	}, &fakeHandler{id: "n1"})
	if err == nil {
		c.Close()
		t.Fatal("Start succeeded on a gossip port in use")
	}
	if !strings.Contains(err.Error(), "gossip port") {
		t.Errorf("error %q does not say which port", err)
	}
}
