package test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/resp"
)

// startSluice runs an in-process Sluice node served over RESP on a free
// loopback port and returns its address. The node is closed when the test
// ends. Its logs are shown if the test fails.
func startSluice(t testing.TB, cfg node.Config) string {
	t.Helper()
	if cfg.Logger == nil {
		logs := &lockedBuffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		t.Cleanup(func() { // runs after the node's Close, registered below
			if t.Failed() && logs.String() != "" {
				t.Logf("Sluice node log:\n%s", logs)
			}
		})
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv, err := resp.New(n, resp.Config{Listener: ln, Logger: cfg.Logger})
	if err != nil {
		ln.Close()
		t.Fatalf("resp.New: %v", err)
	}
	n.Attach(srv)
	n.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("closing the Sluice node: %v", err)
		}
	})
	return srv.Addr()
}
