// Command sluice runs one Sluice node: the Redis-protocol listener, the
// FlatBuffers listener for batched hot reads, and an admin HTTP listener with
// Prometheus metrics and health checks.
//
// Settings come from flags, SLUICE_<NAME> environment variables and a config
// file in redis.conf syntax, in that order of precedence; `sluice --help`
// lists them. SIGTERM or SIGINT stops accepting clients, lets connected
// clients finish (up to drainTimeout) and exits 0; a second signal exits at
// once with status 1. Bad settings exit with status 2.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/wire/fb"
	"github.com/sluicedb/sluice/wire/resp"
)

// drainTimeout bounds a graceful shutdown: how long connected clients get to
// finish before they are cut off. It stays below Kubernetes' default grace
// period of 30 s, after which the process would be killed anyway.
const drainTimeout = 10 * time.Second

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the server failed or was interrupted while draining
	exitUsage = 2 // bad flags, environment or config file
)

func main() {
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr, stop))
}

// run is the whole program short of the process: it returns the exit status.
func run(args, environ []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	o, warnings, err := loadOptions(args, environ)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "sluice: %v\nRun 'sluice --help' for the flags.\n", err)
		return exitUsage
	}
	log := newLogger(stderr, o.logFormat, o.logLevel)
	slog.SetDefault(log)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err := serve(o, log, stop); err != nil {
		log.Error("sluice failed", "err", err)
		return exitError
	}
	return exitOK
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs a node with its listeners until a signal arrives on stop, then
// drains it.
func serve(o options, log *slog.Logger, stop <-chan os.Signal) error {
	// Start reads the cluster settings, so the listeners' addresses can
	// still be filled in below.
	clusterCfg := &cluster.Config{
		BindAddr:      o.bind,
		AdvertiseAddr: o.advertise,
		GossipPort:    o.gossipPort,
		ClusterPort:   o.clusterPort,
		Join:          o.join,
		DataDir:       o.dataDir,
		Replicas:      o.replicas,
		GossipKey:     o.gossipKey,
		GossipKeys:    o.gossipKeys,
		ClusterSecret: o.clusterSecret,
		// "" lets node.Start derive it from the RESP listener and --advertise.
		Meta: cluster.Meta{RESPAddr: o.announce},
	}
	network, err := clusterNetwork(o, log)
	if err != nil {
		return err
	}
	clusterCfg.Network = network
	if network != nil && o.gossipKey == nil && o.clusterSecret == nil {
		log.Warn("cluster port TLS without --gossip-key or --cluster-secret: gossip is not encrypted, and anyone who reaches the gossip port can join the membership and be given slots")
	}
	n, err := node.New(node.Config{
		NodeName:           o.nodeName,
		MaxMemory:          o.maxMemory,
		MaxMemoryPolicy:    o.maxMemoryPolicy,
		RequirePass:        o.requirePass,
		ACLFile:            o.aclFile,
		Redirect:           o.redirect,
		Replication:        o.replication,
		ReplicationTimeout: o.replTimeout,
		Cluster:            clusterCfg,
		Limits: node.Limits{
			MaxClients:      o.maxClients,
			ProtoMaxBulkLen: o.protoMaxBulkLen,
			IdleTimeout:     o.timeout,
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	srv, err := resp.New(n, resp.Config{Addr: net.JoinHostPort(o.bind, strconv.Itoa(o.port)), Logger: log, DisableProtectedMode: !o.protectedMode, EventLoops: o.eventLoops})
	if err != nil {
		return err
	}
	n.Attach(srv)
	tlsAddr := "off"
	var tlsServers []tlsReloader // reloaded on SIGHUP
	if o.tlsPort != 0 {
		tlsSrv, err := resp.New(n, resp.Config{
			Addr: net.JoinHostPort(o.bind, strconv.Itoa(o.tlsPort)), Logger: log, DisableProtectedMode: !o.protectedMode,
			TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, TLSCAFile: o.tlsCA,
		})
		if err != nil {
			_ = n.Close(context.Background())
			return err
		}
		n.Attach(tlsSrv)
		tlsAddr = tlsSrv.Addr()
		tlsServers = append(tlsServers, tlsSrv)
	}
	fbAddr := "off"
	if o.fbPort != 0 {
		fbSrv, err := fb.NewServer(n, fb.Config{Addr: net.JoinHostPort(o.bind, strconv.Itoa(o.fbPort)), Logger: log, DisableProtectedMode: !o.protectedMode})
		if err != nil {
			_ = n.Close(context.Background())
			return err
		}
		n.Attach(fbSrv)
		fbAddr = fbSrv.Addr()
		// Members advertise their FlatBuffers address with their RESP one,
		// for clients that route by the slot table.
		clusterCfg.Meta.FBAddr = cmp.Or(o.announceFB, node.Advertised(fbAddr, o.advertise))
	}
	fbTLSAddr := "off"
	if o.fbTLSPort != 0 {
		fbTLS, err := fb.NewServer(n, fb.Config{
			Addr: net.JoinHostPort(o.bind, strconv.Itoa(o.fbTLSPort)), Logger: log, DisableProtectedMode: !o.protectedMode,
			TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, TLSCAFile: o.tlsCA,
		})
		if err != nil {
			_ = n.Close(context.Background())
			return err
		}
		n.Attach(fbTLS)
		fbTLSAddr = fbTLS.Addr()
		tlsServers = append(tlsServers, fbTLS)
		// With TLS on, cluster-aware FlatBuffers clients are sent to the
		// TLS port: a member advertises one FlatBuffers address.
		clusterCfg.Meta.FBAddr = cmp.Or(o.announceFB, node.Advertised(fbTLSAddr, o.advertise))
	}
	if len(tlsServers) > 0 {
		go reloadTLSOnHangup(log, tlsServers...)
	}
	adminAddr := "off"
	var admin *adminServer
	if o.adminPort != 0 {
		admin, err = listenAdmin(n, net.JoinHostPort(o.bind, strconv.Itoa(o.adminPort)), log)
		if err != nil {
			_ = n.Close(context.Background())
			return err
		}
		adminAddr = admin.Addr()
	}
	if err := n.Start(); err != nil {
		_ = n.Close(context.Background())
		return err
	}
	log.Info("sluice started",
		"node", n.ID(),
		"resp", srv.Addr(),
		"tls", tlsAddr,
		"gossip", net.JoinHostPort(o.bind, strconv.Itoa(o.gossipPort)),
		"cluster", net.JoinHostPort(o.bind, strconv.Itoa(o.clusterPort)),
		"join", strings.Join(o.join, ","),
		"fb", fbAddr,
		"fb_tls", fbTLSAddr,
		"admin", adminAddr,
		"maxmemory", o.maxMemory,
		"maxmemory_policy", o.maxMemoryPolicy,
		"maxclients", o.maxClients,
		"timeout", o.timeout.String(),
		"requirepass", o.requirePass != "",
		"pid", os.Getpid(),
		"go", runtime.Version(),
	)
	if !isLoopback(o.bind) && o.requirePass == "" {
		log.Warn("listening beyond loopback with no requirepass: anyone who reaches the port can read and write every key", "bind", o.bind)
	}

	sig := <-stop
	log.Info("shutting down: draining clients", "signal", sig.String(), "drain_timeout", drainTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- n.Close(ctx) }()
	select {
	case err = <-closed:
	case sig := <-stop:
		return fmt.Errorf("second signal %v: exiting without draining", sig)
	}
	if admin != nil {
		err = errors.Join(err, admin.Close(ctx))
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("sluice stopped")
	return nil
}

// tlsReloader is a listener serving TLS: resp.Server and fb.Server.
type tlsReloader interface {
	ReloadTLS() error
	Addr() string
}

// reloadTLSOnHangup reloads the TLS listeners' certificate on SIGHUP (it is
// also reloaded when the files change).
func reloadTLSOnHangup(log *slog.Logger, servers ...tlsReloader) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for range hup {
		for _, s := range servers {
			if err := s.ReloadTLS(); err != nil {
				log.Error("reloading the TLS certificate", "addr", s.Addr(), "err", err)
			} else {
				log.Info("TLS certificate reloaded", "addr", s.Addr())
			}
		}
	}
}

// isLoopback reports whether a --bind value only accepts local connections.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
