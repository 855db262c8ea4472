// Package node is an embeddable Sluice node: it owns the store and the one
// command table, runs commands for clients of any protocol, and manages the
// lifecycle of the protocol servers attached to it.
//
// A node never parses a wire protocol. Protocol servers (wire/resp) call
// Connect for each client and Client.Exec for each command, and implement
// Writer for the replies; a Go program can skip them and call Do.
package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/store"
)

// ErrClosed is returned by calls on a node after Close.
var ErrClosed = errors.New("node: closed")

// ErrMaxClients is returned by Connect when maxclients connections are open.
var ErrMaxClients = errors.New("ERR max number of clients reached")

// Node is one Sluice node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	clock  store.Clock
	store  *store.Store
	id     string
	start  time.Time
	limits atomic.Pointer[Limits]
	acl    acl

	mu      sync.Mutex
	clients map[int64]*Client
	servers []Server
	nextID  atomic.Int64
	closed  bool

	coarseMs  atomic.Int64 // Unix ms, updated every tick: for idle times, not for expiry
	maxMemory atomic.Int64
	policy    atomic.Uint32 // a store.Policy
	ready     atomic.Bool

	stats    stats
	rates    rateStats
	leaseSeq atomic.Uint64 // the last lease token handed out
	fills    fillWaiters
	tracking tracking
	embedded *sync.Pool // sessions for Do
	peers    *sync.Pool // sessions for commands forwarded by other nodes
	cluster  *cluster.Cluster
	repl     replicator
	stop     chan struct{}
	done     sync.WaitGroup
}

// New creates a node with an empty store. It serves nothing until Start.
func New(cfg Config) (*Node, error) {
	policy := store.AllKeysLFU
	if cfg.MaxMemoryPolicy != "" {
		p, err := store.ParsePolicy(cfg.MaxMemoryPolicy)
		if err != nil {
			return nil, err
		}
		policy = p
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger,
		clock:   cfg.Clock,
		start:   time.Now(),
		clients: make(map[int64]*Client),
		stop:    make(chan struct{}),
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.clock == nil {
		n.clock = store.NewSystemClock()
	}
	n.id = cfg.NodeName
	if n.id == "" {
		var b [20]byte
		_, _ = rand.Read(b[:])
		n.id = hex.EncodeToString(b[:])
	}
	limits := cfg.Limits.withDefaults()
	n.limits.Store(&limits)
	if err := n.repl.init(n, cfg); err != nil {
		return nil, err
	}
	// Lease tokens start at a random point, so a token a failed node handed
	// out is not handed out again by the replica that takes its slots.
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	n.leaseSeq.Store(binary.LittleEndian.Uint64(seed[:]) >> 2)
	if err := n.acl.init(cfg.RequirePass, cfg.ACLFile); err != nil {
		return nil, fmt.Errorf("node: ACL file: %w", err)
	}
	n.stats.init()
	n.tracking.init(n.client)
	n.embedded = n.embeddedClients()
	n.peers = n.peerClients()
	n.maxMemory.Store(cfg.MaxMemory)
	n.coarseMs.Store(time.Now().UnixMilli())
	n.policy.Store(uint32(policy))
	n.store = store.New(store.Config{
		Shards:    cfg.Shards,
		MaxMemory: cfg.MaxMemory,
		Policy:    policy,
		Clock:     n.clock,
		Slot:      ring.KeySlot,
		OnRemove:  n.tracking.invalidateRemoved,
	})
	return n, nil
}

// ID is the node's name (random when Config.NodeName was empty).
func (n *Node) ID() string { return n.id }

// Cluster returns the node's cluster membership (members, slot table,
// status), or nil for a node started without Config.Cluster.
func (n *Node) Cluster() *cluster.Cluster { return n.cluster }

// Limits returns the client limits now in force.
func (n *Node) Limits() Limits { return *n.limits.Load() }

// Attach adds a protocol server; Start serves it and Close stops it.
func (n *Node) Attach(s Server) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.servers = append(n.servers, s)
}

// Start runs the background work (active expiry), joins or forms the
// cluster when Config.Cluster is set (waiting until the node has a slot
// table, at most startTimeout), and serves every attached server. A server
// that fails later is logged.
func (n *Node) Start() error {
	n.mu.Lock()
	servers := append([]Server(nil), n.servers...)
	n.mu.Unlock()
	if cc := n.cfg.Cluster; cc != nil {
		cfg := *cc
		// With no name given, the cluster keeps one ID in its data dir, so a
		// restarted node rejoins as itself.
		cfg.NodeID = n.cfg.NodeName
		if cfg.Logger == nil {
			cfg.Logger = n.log
		}
		if cfg.Meta.RESPAddr == "" && len(servers) > 0 {
			cfg.Meta.RESPAddr = Advertised(servers[0].Addr(), cfg.AdvertiseAddr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		_, err := cluster.Start(ctx, cfg, peerHandler{n}) // sets n.cluster through Bind
		cancel()
		if err != nil {
			n.cluster = nil
			return fmt.Errorf("node: starting the cluster: %w", err)
		}
		n.repl.start()
	}
	n.done.Add(1)
	go n.expireLoop()
	for _, s := range servers {
		n.done.Add(1)
		go func() {
			defer n.done.Done()
			if err := s.Serve(); err != nil {
				n.log.Error("server stopped", "addr", s.Addr(), "err", err)
			}
		}()
	}
	n.ready.Store(true)
	return nil
}

// leaveGrace is how long a node that left its cluster keeps answering
// (with MOVED, or forwarding) before it closes its listeners.
const leaveGrace = time.Second

// startTimeout bounds how long Start waits to join the cluster.
const startTimeout = time.Minute

// Advertised is a listener's address as other hosts reach it: an
// unspecified host (0.0.0.0, ::) is replaced by the advertise address.
func Advertised(addr, advertise string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || advertise == "" {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return net.JoinHostPort(advertise, port)
	}
	return addr
}

// DefaultUserNoPass reports whether the default user has no password,
// Redis's condition for protected mode: protocol servers listening beyond
// loopback then refuse clients from other hosts.
func (n *Node) DefaultUserNoPass() bool { return n.acl.entry("default").user().nopass }

// Ready reports whether the node is serving (between Start and Close).
func (n *Node) Ready() bool { return n.ready.Load() }

// expireLoop removes expired keys in the background, as Redis's active expiry
// does: ten cycles a second, and more at once while a cycle finds many
// expired keys (each cycle looks at a bounded sample).
func (n *Node) expireLoop() {
	defer n.done.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.coarseMs.Store(now.UnixMilli())
			for i := 0; i < 16 && n.store.ExpireCycle() > expireBacklog; i++ {
			}
		}
	}
}

// expireBacklog is how many keys one expire cycle must remove for the next
// to run at once rather than on the next tick.
const expireBacklog = 1000

// Close stops the servers (they drain their connections), then the
// background work. It waits until ctx ends at the latest.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.ready.Store(false)
	servers := n.servers
	n.mu.Unlock()
	var errs []error
	if n.cluster != nil {
		others := len(n.cluster.Members()) > 1
		if err := n.cluster.Leave(ctx); err != nil {
			errs = append(errs, err)
		} else if others {
			// Clients whose slot table still names this node learn the new
			// one from the MOVED replies it answers with for a moment:
			// once it is gone, many clients (go-redis's ClusterClient)
			// would only see refused connections until their next
			// periodic reload.
			select {
			case <-time.After(leaveGrace):
			case <-ctx.Done():
			}
		}
	}
	for _, s := range servers {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.cluster != nil {
		if err := n.cluster.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	close(n.stop)
	finished := make(chan struct{})
	go func() { n.done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// SetMaxMemory changes the memory limit (CONFIG SET maxmemory), evicting at
// once if the store is over it.
func (n *Node) SetMaxMemory(bytes int64) {
	n.maxMemory.Store(bytes)
	n.store.SetMaxMemory(bytes)
}

// overMemory reports whether writes that grow memory must be refused now: the
// store is over maxmemory and the policy may not evict.
func (n *Node) overMemory() bool {
	max := n.maxMemory.Load()
	return max > 0 && store.Policy(n.policy.Load()) == store.NoEviction && n.store.Memory() > max
}

// updateLimits changes the client limits atomically.
func (n *Node) updateLimits(change func(*Limits)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := *n.limits.Load()
	change(&l)
	n.limits.Store(&l)
}

// port is the TCP port of the first attached server, for INFO.
func (n *Node) port() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.servers {
		addr := s.Addr()
		if i := strings.LastIndexByte(addr, ':'); i >= 0 {
			p, _ := strconv.Atoi(addr[i+1:])
			return p
		}
	}
	return 0
}

// client returns the connected client with the id, or nil.
func (n *Node) client(id int64) *Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clients[id]
}

// clientCount is the number of connected clients.
func (n *Node) clientCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.clients)
}

// clientsSorted returns the connected clients by id.
func (n *Node) clientsSorted() []*Client {
	n.mu.Lock()
	out := make([]*Client, 0, len(n.clients))
	for _, c := range n.clients {
		out = append(out, c)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b *Client) int { return cmp.Compare(a.id, b.id) })
	return out
}
