package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicedb/sluice/node"
)

// adminServer is the operator's HTTP listener (--admin-port):
//
//	/metrics  Prometheus text format: the node's metrics (sluice_*), the Go
//	          runtime's (go_*) and the process's (process_*)
//	/healthz  200 while the process runs (liveness)
//	/readyz   200 while the node serves clients, else 503 (readiness)
type adminServer struct {
	http *http.Server
	ln   net.Listener
}

// listenAdmin binds addr and serves the admin endpoints of n on it until Close.
func listenAdmin(n *node.Node, addr string, log *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	s := &adminServer{
		http: &http.Server{
			Handler:           adminHandler(n, errLog),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          errLog,
		},
		ln: ln,
	}
	go func() {
		if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "addr", s.Addr(), "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the admin listener is bound to.
func (s *adminServer) Addr() string { return s.ln.Addr().String() }

// Close stops the listener and waits for requests in flight until ctx ends.
func (s *adminServer) Close(ctx context.Context) error { return s.http.Shutdown(ctx) }

func adminHandler(n *node.Node, errLog promhttp.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		n.Collector(),
		// With the runtime's own histograms of stop-the-world pauses
		// (stopping the world apart from the whole pause) and of how long
		// runnable goroutines waited for a thread: what a GC pause or a
		// tail latency on a busy machine is made of.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/(pauses|latencies)`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errLog}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !n.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}
