package cluster

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/sluicedb/sluice/ring"
)

// Config configures one node's membership in a cluster.
type Config struct {
	// NodeID names the node; it must be unique in the cluster and stay the
	// same across restarts, since the table assigns slots to it. "" takes
	// the ID stored in DataDir, or a new random one (stored there when
	// DataDir is set). An ID that differs from the one DataDir was created
	// with is an error: that raft state belongs to another node.
	NodeID string
	// BindAddr is the IP address gossip and the cluster port listen on.
	BindAddr string
	// AdvertiseAddr is the IP address other nodes and clients use to reach
	// this one. "" means BindAddr, or the first private IP of the host when
	// BindAddr is 0.0.0.0 (or "").
	AdvertiseAddr string
	// GossipPort is memberlist's port, TCP and UDP. 0 picks a free port.
	GossipPort int
	// ClusterPort carries raft and peer connections over TCP, one port
	// multiplexed by the first byte a dialer sends. 0 picks a free port.
	ClusterPort int
	// Join lists gossip host:port addresses of existing members. Names are
	// resolved by DNS, each to all its addresses (so a Kubernetes headless
	// service works). Start retries until one answers or its ctx ends.
	// Empty means this node founds a new cluster, unless DataDir holds the
	// state of one it already belongs to.
	Join []string
	// DataDir holds the raft log, stable store and snapshots, and the node
	// ID. "" keeps them in memory: a restarted node then joins as new.
	DataDir string
	// Replicas is the number of extra copies of each slot the leader puts
	// in the table (capped at members−1). −1 means the default: 1 once
	// there are 2 or more nodes, else 0. The raft leader's value wins.
	Replicas int
	// Meta is what this node advertises to clients through the table.
	Meta Meta
	// GossipKey encrypts gossip with AES-GCM when set (16, 24 or 32
	// bytes); every member must use the same key. Empty with ClusterSecret
	// set means a key derived from ClusterSecret.
	GossipKey []byte
	// ClusterSecret, when set, authenticates every connection to the
	// cluster port, raft's and Forward's, with a mutual HMAC-SHA256
	// handshake (see auth.go): a process that lacks it can neither join
	// raft nor send or receive commands. Every member must use the same
	// secret; 16 bytes or more of randomness. Unless GossipKey is set,
	// gossip is encrypted with a key derived from it, so a process without
	// it cannot join gossip either (and take slots it could not serve).
	// Empty means no handshake: anyone who reaches the cluster port is a
	// peer, which is for private networks only. With a secret the port's
	// traffic is also encrypted: TLS 1.3 with a key derived from it (see
	// tls.go), inside which the handshake runs.
	ClusterSecret []byte
	// Logger receives the cluster's logs, memberlist's and raft's
	// included. nil means slog.Default().
	Logger *slog.Logger
	// Timing sets the failure-detection and election clocks. The zero
	// value means production defaults (memberlist's LAN profile, raft's
	// defaults); tests use FastTiming.
	Timing Timing
	// Network carries the cluster port and gossip. nil means TCPNetwork,
	// the host's sockets; tests use a MemNetwork host.
	Network Network
	// PeerConns is the number of connections Forward keeps to each peer;
	// each carries many requests in flight. 0 means 2.
	PeerConns int
	// GossipKeys are further gossip keys this node accepts (decrypts
	// with) besides the one it encrypts with, GossipKey, so that keys
	// rotate without a gap: install the new key on every node, make it
	// GossipKey on every node, then remove the old one (see doc.go). With
	// ClusterSecret set, the key derived from it is accepted too.
	GossipKeys [][]byte
}

// Meta is what a node advertises to clients: host:port addresses as clients
// must dial them ("" when that listener is off).
type Meta struct {
	RESPAddr string
	FBAddr   string
}

// Member is one node of the cluster.
type Member struct {
	ID string
	// GossipAddr is memberlist's host:port.
	GossipAddr string
	// ClusterAddr is the cluster port's host:port (raft and Forward).
	ClusterAddr string
	Meta        Meta
	// State is this node's view of the member: memberlist's when it knows
	// the member, else the one last agreed through raft.
	State MemberState
}

// MemberState is how alive a member looks.
type MemberState uint8

// Member states, as memberlist's failure detector sees them.
const (
	// Alive answers probes.
	Alive MemberState = iota
	// Suspect missed probes and is being confirmed dead; it keeps its slots.
	Suspect
	// Dead failed; the leader moves its slots away.
	Dead
	// Left announced it was leaving (Leave).
	Left
)

func (s MemberState) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "unknown"
}

// Status is the state of this node's raft and table.
type Status struct {
	// Leader is the node ID of the raft leader, "" when none is known.
	Leader string
	// HasQuorum is false on the minority side of a partition (and while
	// no leader is known). The last applied table stays in force.
	HasQuorum bool
	// Epoch is the current table's epoch, 0 before the first.
	Epoch uint64
	// Voters and NonVoters count the raft configuration's servers.
	Voters, NonVoters int
	// RaftState is "Leader", "Follower", "Candidate" or "Shutdown".
	RaftState string
}

// Handler serves what peers send; the node implements it.
type Handler interface {
	// ServePeer runs one command forwarded by another node and writes its
	// reply to w. It reports false, writing nothing, when this node does
	// not own the command's slot by its own table; Forward then returns
	// ErrNotOwner. An error (a write its replicas did not confirm) replaces
	// the reply: Forward returns it. args and w are valid only during the call. Calls from
	// one connection come one at a time, in the order they were sent; Close
	// waits for the calls in progress, so a call must not block for long.
	ServePeer(args [][]byte, w ReplyWriter) (bool, error)
	// ServeReplicate applies a payload another node sent with Replicate
	// (the node's replication and hand-off records; this package does not
	// read them). Payloads from one sender to one receiver are applied in
	// the order Replicate was called, when each call waits for the last.
	ServeReplicate(payload []byte) error
	// HandOff is this node's part in a plan (Placement.Target set): it
	// returns nil once every peer that target makes hold a slot this node
	// owns in p.Table holds it, and this node accepts no more writes to
	// the slots it gives away. The leader switches the table to the target
	// when every member of the table has returned nil for the plan. ctx
	// ends when the plan is replaced or the cluster closes.
	HandOff(ctx context.Context, p Placement) error
}

// Binder is an optional method of a Handler: Start calls Bind with the
// Cluster before it serves any peer (and before it returns), so the handler
// can use the Cluster from its first call. A Start that fails closes it.
type Binder interface {
	Bind(c *Cluster)
}

// Placement is where slots live: the table in force and, while the leader
// moves slots, the target table and the plan that moves them there.
type Placement struct {
	Table  *ring.Table
	Target *ring.Table // nil when no move is in progress
	Plan   uint64      // names the move to Target
}

// ReplyWriter has exactly node.Writer's method set, so the node's writers
// satisfy it without this package importing node. See node.Writer for the
// meaning of each method.
type ReplyWriter interface {
	SimpleString(s string)
	Error(msg string)
	Int(n int64)
	Bulk(b []byte)
	BulkString(s string)
	Null()
	NullArray()
	Array(n int)
	Map(n int)
	Set(n int)
	Double(f float64)
	Bool(b bool)
	Verbatim(format string, s []byte)
	Push(n int)
	SetProtocol(v int)
}

// Errors of Forward and Start.
var (
	// ErrNotOwner: the peer does not own the command's slot by its table
	// (tables are changing); nothing ran there.
	ErrNotOwner = errors.New("cluster: peer does not own the slot")
	// ErrNoTable: the cluster has agreed no table yet (Start's error when
	// its ctx ends first).
	ErrNoTable = errors.New("cluster: no slot table yet")
	// ErrUnknownNode: no member has that ID.
	ErrUnknownNode = errors.New("cluster: unknown node")
	// ErrPeerDown: the connection to the peer failed or closed while the
	// command was in flight; it may or may not have run there.
	ErrPeerDown = errors.New("cluster: peer connection lost")
	// ErrClosed: the Cluster was closed.
	ErrClosed = errors.New("cluster: closed")
)

// Timing sets the clocks of failure detection and agreement. A zero field
// takes the production default given in its comment. Shorter clocks detect
// failures sooner but call healthy nodes dead on a loaded host or network.
type Timing struct {
	// ProbeInterval is how often memberlist probes a random member (1s).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for an ack (500ms).
	ProbeTimeout time.Duration
	// GossipInterval is how often memberlist gossips (200ms).
	GossipInterval time.Duration
	// SuspicionMult scales how long a suspect has to refute before it is
	// declared dead: SuspicionMult × log10(N) × ProbeInterval, at least
	// SuspicionMult × ProbeInterval (4).
	SuspicionMult int
	// PushPullInterval is how often memberlist syncs full state with a
	// random member (30s).
	PushPullInterval time.Duration
	// DialTimeout bounds memberlist's and raft's TCP dials and I/O (10s).
	DialTimeout time.Duration
	// HeartbeatTimeout is raft's: a follower that hears nothing from the
	// leader for this long starts an election (1s).
	HeartbeatTimeout time.Duration
	// ElectionTimeout is raft's candidate timeout (1s).
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without
	// contacting a quorum (500ms).
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is raft's batching delay for heartbeats (50ms).
	CommitTimeout time.Duration
	// Reconcile is how often the leader rechecks membership even without
	// gossip events, and how often a node retries reaching members it
	// lost (1s).
	Reconcile time.Duration
	// Reap is how long a dead member stays in the agreed member list
	// (for the nodes to try to reach it again) before it is dropped (72h).
	Reap time.Duration
	// HandOff bounds a plan: a leader that has not heard every member
	// report its hand-off done by then switches to the target anyway, and
	// logs which members did not report (2m).
	HandOff time.Duration
}

// FastTiming returns clocks for clusters inside one process (MemNetwork or
// loopback): failures are detected in well under a second. They are too
// eager for real networks.
func FastTiming() Timing {
	return Timing{
		ProbeInterval:      100 * time.Millisecond,
		ProbeTimeout:       80 * time.Millisecond,
		GossipInterval:     30 * time.Millisecond,
		SuspicionMult:      3,
		PushPullInterval:   2 * time.Second,
		DialTimeout:        2 * time.Second,
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 300 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		Reconcile:          200 * time.Millisecond,
		Reap:               time.Minute,
		HandOff:            30 * time.Second,
	}
}

// Start listens on the gossip and cluster ports, joins the members in
// cfg.Join (or, with no Join and no state in DataDir, bootstraps a cluster
// of one), and returns once this node has a slot table or ctx ends. h serves
// the commands peers forward.
func Start(ctx context.Context, cfg Config, h Handler) (*Cluster, error) {
	return start(ctx, cfg, h)
}

// ID is this node's ID.
func (c *Cluster) ID() string { return c.id }

// Self returns this node as the others see it.
func (c *Cluster) Self() Member { return c.self() }

// Table returns the agreed slot table in force on this node, nil before the
// first. It is one atomic load: call it per command.
func (c *Cluster) Table() *ring.Table { return c.table.Load() }

// OnChange registers fn to be called with each new placement (a new table,
// or a new plan or target) after it is applied, in order, from one
// goroutine (a slow fn delays later calls but never raft). fn is not called
// for placements applied before OnChange; Placement gives the current one.
func (c *Cluster) OnChange(fn func(Placement)) { c.onChange(fn) }

// Placement returns the placement in force.
func (c *Cluster) Placement() Placement {
	if p := c.placed.Load(); p != nil {
		return *p
	}
	return Placement{Table: c.Table()}
}

// HasQuorum reports whether this node is in touch with a raft quorum (one
// atomic load, refreshed ten times per heartbeat timeout). A node cut off
// from it, on the minority side of a partition, must take no writes: the
// majority may already have given its slots to others.
func (c *Cluster) HasQuorum() bool { return c.quorum.Load() }

// Serving reports whether this process is the one the agreed state knows
// as this node. A node that restarted (and so lost its memory) is not,
// until the leader has taken it out of the table and let it back in: it
// must not serve the slots the table still gives it.
func (c *Cluster) Serving() bool { return c.serving() }

// Replicate sends payload to the node nodeID's Handler.ServeReplicate and
// waits for it to be applied. ctx bounds the call; ErrPeerDown or ctx's
// error mean it may or may not have been applied.
func (c *Cluster) Replicate(ctx context.Context, nodeID string, payload []byte) error {
	return c.replicate(ctx, nodeID, payload)
}

// Members returns the agreed members and any member gossip knows that is
// not agreed yet, sorted by ID.
func (c *Cluster) Members() []Member { return c.members() }

// Member returns the member with that ID.
func (c *Cluster) Member(id string) (Member, bool) { return c.member(id) }

// Status reports this node's view of raft and the table.
func (c *Cluster) Status() Status { return c.status() }

// Forward runs args on the node nodeID through its Handler and replays the
// reply into w, with the types the handler wrote (so w's protocol, RESP2 or
// RESP3, decides the encoding). ctx bounds the whole call. It returns
// ErrNotOwner when the peer does not own the slot, ErrUnknownNode for an ID
// with no address, and ErrPeerDown or ctx's error when no reply came; w is
// written only when the error is nil.
func (c *Cluster) Forward(ctx context.Context, nodeID string, args [][]byte, w ReplyWriter) error {
	return c.forward(ctx, nodeID, args, w)
}

// Leave leaves the cluster gracefully: it announces that this node is
// leaving, hands raft leadership to another voter if it holds it, waits
// until the leader has agreed a table without this node and removed it from
// raft (or ctx ends), then announces the leave to gossip. Call Close after.
func (c *Cluster) Leave(ctx context.Context) error { return c.leave(ctx) }

// Close stops this node's gossip, raft and connections without announcing
// anything: to the others it is a failure, unless Leave came first.
func (c *Cluster) Close() error { return c.close() }

// Network is the seam for all of a node's I/O: the cluster port's listener
// and dialer, and memberlist's transport. TCPNetwork is the real one;
// MemNetwork.Host gives in-memory ones.
type Network interface {
	// Listen opens the cluster port at addr (host:port).
	Listen(addr string) (net.Listener, error)
	// Dial connects to a peer's cluster port.
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Gossip opens memberlist's transport at bindAddr:port (port 0 picks a
	// free one), logging to logger.
	Gossip(bindAddr string, port int, logger *log.Logger) (memberlist.NodeAwareTransport, error)
}
