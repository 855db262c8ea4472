package cluster

import (
	"cmp"
	"context"
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

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/sluicedb/sluice/ring"
)

// Cluster is this node's membership in a cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	id        string
	boot      uint64 // random per Start: nodeMeta.Boot
	me        Member // addresses fixed at Start
	log       *slog.Logger
	timing    Timing
	net       Network
	secret    []byte // Config.ClusterSecret: the cluster port's handshake
	handler   Handler
	replicas  int
	peerConns int
	dataDir   string
	resumed   bool   // raft state was found in dataDir
	peers     string // the peers last written to dataDir

	table   atomic.Pointer[ring.Table] // the table in force: Table()
	agreed  atomic.Pointer[agreed]     // the last applied state
	meta    atomic.Pointer[[]byte]     // what NodeMeta gossips
	closed  atomic.Bool
	leaving atomic.Bool
	stale   atomic.Bool   // the agreed state knows another process as this node
	quorum  atomic.Bool   // Status().HasQuorum, refreshed by quorumLoop
	ready   chan struct{} // closed at the first table
	once    sync.Once

	ml       *memberlist.Memberlist
	gossipT  memberlist.NodeAwareTransport
	gossipMu sync.Mutex
	gossip   map[string]*peerState
	suspects atomic.Pointer[map[string]bool]

	raft   *raft.Raft
	trans  *raft.NetworkTransport
	stores stores

	ln     net.Listener
	stream *streamLayer

	poolMu sync.RWMutex
	pools  map[string]*peerPool
	connMu sync.Mutex
	conns  map[net.Conn]struct{} // served peer connections

	notifyMu   sync.Mutex
	notifyFns  []func(Placement)
	notifyQ    []Placement
	notifyWake chan struct{}
	placed     atomic.Pointer[Placement] // the last placement queued

	handoff handoffState // this node's part in the plan in progress
	doneMu  sync.Mutex
	doneBy  map[string]uint64 // leader: the last plan each member reported handed off

	kicks     chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

func (t Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.ProbeInterval, time.Second)
	def(&t.ProbeTimeout, 500*time.Millisecond)
	def(&t.GossipInterval, 200*time.Millisecond)
	if t.SuspicionMult <= 0 {
		t.SuspicionMult = 4
	}
	def(&t.PushPullInterval, 30*time.Second)
	def(&t.DialTimeout, 10*time.Second)
	def(&t.HeartbeatTimeout, time.Second)
	def(&t.ElectionTimeout, time.Second)
	def(&t.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&t.CommitTimeout, 50*time.Millisecond)
	def(&t.Reconcile, time.Second)
	def(&t.Reap, 72*time.Hour)
	def(&t.HandOff, 2*time.Minute)
	t.LeaderLeaseTimeout = min(t.LeaderLeaseTimeout, t.HeartbeatTimeout)
	t.ElectionTimeout = max(t.ElectionTimeout, t.HeartbeatTimeout)
	return t
}

func start(ctx context.Context, cfg Config, h Handler) (*Cluster, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	network := cfg.Network
	if network == nil {
		network = TCPNetwork{}
	}
	id, err := resolveID(cfg.NodeID, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		id:         id,
		log:        logger,
		timing:     cfg.Timing.withDefaults(),
		net:        network,
		secret:     slices.Clone(cfg.ClusterSecret),
		handler:    h,
		replicas:   cfg.Replicas,
		dataDir:    cfg.DataDir,
		peerConns:  cmp.Or(cfg.PeerConns, 2),
		ready:      make(chan struct{}),
		gossip:     make(map[string]*peerState),
		pools:      make(map[string]*peerPool),
		conns:      make(map[net.Conn]struct{}),
		notifyWake: make(chan struct{}, 1),
		kicks:      make(chan struct{}, 1),
		stop:       make(chan struct{}),
		boot:       newBoot(),
		doneBy:     make(map[string]uint64),
	}
	c.suspects.Store(&map[string]bool{})
	if b, ok := h.(Binder); ok {
		b.Bind(c)
	}
	if err := c.open(cfg); err != nil {
		c.close()
		return nil, err
	}
	c.quorum.Store(true)
	c.wg.Add(4)
	go c.quorumLoop()
	go c.reconcileLoop()
	go c.reconnectLoop()
	go c.notifyLoop()
	switch peers := readPeers(cfg.DataDir); {
	case len(cfg.Join) > 0:
		if err := c.join(ctx, cfg.Join); err != nil {
			c.close()
			return nil, err
		}
	case c.resumed && len(peers) > 0:
		// Rejoin the members of the last agreed state in the background:
		// the table from disk (if raft had snapshotted) serves meanwhile.
		c.wg.Add(1)
		go c.rejoin(peers)
	}
	select {
	case <-c.ready:
	case <-ctx.Done():
		c.close()
		return nil, fmt.Errorf("%w: %w", ErrNoTable, ctx.Err())
	}
	c.log.Info("cluster started", "node", c.id, "gossip", c.me.GossipAddr, "cluster", c.me.ClusterAddr,
		"epoch", c.Table().Epoch, "members", len(c.Table().Members()))
	return c, nil
}

// open binds the ports and starts raft and memberlist.
func (c *Cluster) open(cfg Config) error {
	bind := cfg.BindAddr
	if bind == "" {
		bind = "0.0.0.0"
	}
	// Gossip first: its bound address decides what this node advertises
	// when BindAddr is unspecified.
	var err error
	if c.gossipT, err = c.net.Gossip(bind, cfg.GossipPort, newGossipLogger(c.log)); err != nil {
		return fmt.Errorf("cluster: gossip port: %w", err)
	}
	ip, gossipPort, err := c.gossipT.FinalAdvertiseAddr("", 0)
	if err != nil {
		return fmt.Errorf("cluster: advertise address: %w", err)
	}
	host := cfg.AdvertiseAddr
	if host == "" {
		host = ip.String()
	}
	if c.ln, err = c.net.Listen(net.JoinHostPort(bind, strconv.Itoa(cfg.ClusterPort))); err != nil {
		return fmt.Errorf("cluster: cluster port: %w", err)
	}
	_, clusterPort, err := splitHostPort(c.ln.Addr().String())
	if err != nil {
		return err
	}
	c.me = Member{
		ID:          c.id,
		GossipAddr:  net.JoinHostPort(host, strconv.Itoa(gossipPort)),
		ClusterAddr: net.JoinHostPort(host, strconv.Itoa(clusterPort)),
		Meta:        cfg.Meta,
		State:       Alive,
	}
	meta := nodeMeta{ClusterAddr: c.me.ClusterAddr, Meta: cfg.Meta, Boot: c.boot}.encode()
	c.meta.Store(&meta)

	if err := c.openRaft(cfg); err != nil {
		return err
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = c.id
	mc.Transport = c.gossipT
	mc.AdvertiseAddr = host
	mc.AdvertisePort = gossipPort
	mc.Delegate = delegate{c}
	mc.Events = delegate{c}
	mc.Logger = newGossipLogger(c.log)
	if mc.Keyring, err = gossipKeyring(cfg); err != nil {
		return err
	}
	mc.ProbeInterval = c.timing.ProbeInterval
	mc.ProbeTimeout = c.timing.ProbeTimeout
	mc.GossipInterval = c.timing.GossipInterval
	mc.SuspicionMult = c.timing.SuspicionMult
	mc.PushPullInterval = c.timing.PushPullInterval
	mc.TCPTimeout = c.timing.DialTimeout
	// A node that comes back with the same ID at a new address (a
	// rescheduled container) takes its name back once the old one is dead.
	mc.DeadNodeReclaimTime = c.timing.ProbeInterval
	if c.ml, err = memberlist.Create(mc); err != nil {
		return fmt.Errorf("cluster: gossip: %w", err)
	}
	return nil
}

func (c *Cluster) openRaft(cfg Config) error {
	rlog := newRaftLogger(c.log)
	var err error
	if c.stores, err = openStores(cfg.DataDir, rlog.StandardWriter(nil)); err != nil {
		return err
	}
	c.stream = newStreamLayer(c.net, c.secret, tcpAddr(c.me.ClusterAddr))
	c.wg.Add(1)
	go c.serveClusterPort()
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  c.stream,
		MaxPool: 3,
		Timeout: c.timing.DialTimeout,
		Logger:  rlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.id)
	rc.Logger = rlog
	rc.HeartbeatTimeout = c.timing.HeartbeatTimeout
	rc.ElectionTimeout = c.timing.ElectionTimeout
	rc.LeaderLeaseTimeout = c.timing.LeaderLeaseTimeout
	rc.CommitTimeout = c.timing.CommitTimeout
	// A removed server keeps running raft, so that the leader can add it
	// back as a non-voter when it returns.
	rc.ShutdownOnRemove = false
	// Each entry holds a whole table (a few KiB): snapshot often and keep
	// a short tail, so the log stays small in memory and on disk.
	rc.SnapshotThreshold = 128
	rc.TrailingLogs = 128

	st := c.stores
	existing, err := raft.HasExistingState(st.logs, st.stable, st.snaps)
	if err != nil {
		return fmt.Errorf("cluster: raft state: %w", err)
	}
	c.resumed = existing
	self := raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(c.id), Address: raft.ServerAddress(c.me.ClusterAddr)}
	alone := !existing && len(cfg.Join) == 0
	if existing {
		conf := *rc
		_, inmem := raft.NewInmemTransport("")
		stored, err := raft.GetConfiguration(&conf, discardFSM{}, st.logs, st.stable, st.snaps, inmem)
		if err != nil {
			return fmt.Errorf("cluster: raft state: %w", err)
		}
		alone = len(stored.Servers) == 1 && stored.Servers[0].ID == self.ID
		c.log.Info("resuming cluster state", "node", c.id, "servers", len(stored.Servers))
	}
	if alone {
		// A lone voter need not wait out a heartbeat timeout to find that
		// no leader exists: raft's follower checks at once when its timeout
		// is lowered, so start 1ms above the configured one and lower it
		// below, and the node elects itself within milliseconds.
		rc.HeartbeatTimeout += time.Millisecond
		rc.ElectionTimeout += time.Millisecond
	}
	if c.raft, err = raft.NewRaft(rc, &fsm{c}, st.logs, st.stable, st.snaps, c.trans); err != nil {
		return fmt.Errorf("cluster: raft: %w", err)
	}
	if !existing && len(cfg.Join) == 0 {
		if err := c.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{self}}).Error(); err != nil {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	if alone {
		rc := c.raft.ReloadableConfig()
		rc.HeartbeatTimeout = c.timing.HeartbeatTimeout
		rc.ElectionTimeout = c.timing.ElectionTimeout
		if err := c.raft.ReloadConfig(rc); err != nil {
			return fmt.Errorf("cluster: raft: %w", err)
		}
	}
	return nil
}

// join contacts the seeds until one answers with a cluster, or ctx ends.
func (c *Cluster) join(ctx context.Context, seeds []string) error {
	wait := 100 * time.Millisecond
	for {
		n, err := c.ml.Join(seeds)
		if n > 0 && c.ml.NumMembers() > 1 {
			c.log.Info("joined cluster", "node", c.id, "seeds", seeds, "members", c.ml.NumMembers())
			return nil
		}
		why := "no other member answered"
		if err != nil {
			why = strings.Join(strings.Fields(err.Error()), " ") // memberlist's errors span lines
		}
		c.log.Warn("cannot join cluster yet, retrying", "seeds", seeds, "err", why, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: join %v: %w (last error: %s)", ErrNoTable, seeds, ctx.Err(), why)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// rejoin contacts the members this node knew before it restarted until
// gossip has any other member, or the cluster closes.
func (c *Cluster) rejoin(peers []string) {
	defer c.wg.Done()
	wait := c.timing.Reconcile
	for c.ml.NumMembers() < 2 {
		if _, err := c.ml.Join(peers); err == nil && c.ml.NumMembers() > 1 {
			c.log.Info("rejoined cluster", "node", c.id, "peers", peers)
			return
		}
		select {
		case <-c.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 16*c.timing.Reconcile)
	}
}

// setAgreed installs a state raft applied.
func (c *Cluster) setAgreed(a *agreed) {
	old := c.agreed.Swap(a)
	servingChanged := c.noteServing(a)
	if t := a.table; t != nil && len(t.Members()) > 0 {
		if cur := c.table.Load(); cur == nil || t.Epoch > cur.Epoch {
			c.table.Store(t)
			c.once.Do(func() { close(c.ready) })
		}
		c.queuePlacement(a, servingChanged)
	}
	if c.dataDir != "" {
		c.savePeers(a)
	}
	// Connections to a member that moved or was dropped are stale.
	for _, r := range old.membersOrNil() {
		if n, ok := a.find(r.ID); !ok || n.ClusterAddr != r.ClusterAddr {
			go c.dropPool(r.ID)
		}
	}
}

// savePeers keeps the other members' gossip addresses in the data dir when
// they change. It runs on raft's FSM goroutine, as setAgreed does.
func (c *Cluster) savePeers(a *agreed) {
	var addrs []string
	for _, r := range a.members {
		if r.ID != c.id && r.State != Left && r.GossipAddr != "" {
			addrs = append(addrs, r.GossipAddr)
		}
	}
	if s := strings.Join(addrs, " "); s != c.peers {
		if err := writePeers(c.dataDir, addrs); err != nil {
			c.log.Warn("cannot save peers in the data dir", "err", err)
			return
		}
		c.peers = s
	}
}

func (a *agreed) membersOrNil() []record {
	if a == nil {
		return nil
	}
	return a.members
}

func (c *Cluster) onChange(fn func(Placement)) {
	c.notifyMu.Lock()
	c.notifyFns = append(slices.Clip(c.notifyFns), fn)
	c.notifyMu.Unlock()
}

// queuePlacement queues the placement of a applied state for the OnChange
// functions when it differs from the last one queued, or when Serving
// changed.
func (c *Cluster) queuePlacement(a *agreed, force bool) {
	p := Placement{Table: c.table.Load(), Target: a.target, Plan: a.plan}
	c.notifyMu.Lock()
	if last := c.placed.Load(); !force && last != nil && last.Table == p.Table && last.Target == p.Target && last.Plan == p.Plan {
		c.notifyMu.Unlock()
		return
	}
	c.placed.Store(&p)
	c.notifyQ = append(c.notifyQ, p)
	c.notifyMu.Unlock()
	select {
	case c.notifyWake <- struct{}{}:
	default:
	}
}

// notifyLoop calls the OnChange functions, placement by placement, off
// raft's goroutine, then starts this node's hand-off for a new plan.
func (c *Cluster) notifyLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			c.handoff.cancel()
			return
		case <-c.notifyWake:
		}
		for {
			c.notifyMu.Lock()
			if len(c.notifyQ) == 0 {
				c.notifyMu.Unlock()
				break
			}
			p := c.notifyQ[0]
			c.notifyQ = c.notifyQ[1:]
			fns := c.notifyFns
			c.notifyMu.Unlock()
			for _, fn := range fns {
				fn(p)
			}
			c.startHandOff(p)
		}
	}
}

func (c *Cluster) self() Member { return c.me }

func (c *Cluster) member(id string) (Member, bool) {
	r, agreedOK := c.agreed.Load().find(id)
	p, gossipOK := c.gossipState(id)
	return memberOf(r, agreedOK, p, gossipOK)
}

// memberOf merges the agreed record and gossip's view of one member.
// Gossip is fresher for state and addresses; members gossip knows only as
// gone are not members.
func memberOf(r record, agreedOK bool, p peerState, gossipOK bool) (Member, bool) {
	var m Member
	switch {
	case gossipOK && (p.state == Alive || p.state == Suspect || agreedOK):
		m = Member{ID: p.id, GossipAddr: p.gossipAddr, ClusterAddr: p.meta.ClusterAddr, Meta: p.meta.Meta, State: p.state}
		if agreedOK && m.ClusterAddr == "" {
			m.GossipAddr, m.ClusterAddr, m.Meta = r.GossipAddr, r.ClusterAddr, r.Meta
		}
	case agreedOK:
		m = Member{ID: r.ID, GossipAddr: r.GossipAddr, ClusterAddr: r.ClusterAddr, Meta: r.Meta, State: r.State}
		if m.State == Left {
			m.State = Alive // leaving, still serving
		}
	default:
		return Member{}, false
	}
	return m, true
}

func (c *Cluster) members() []Member {
	view := c.gossipView()
	a := c.agreed.Load()
	var out []Member
	for _, r := range a.membersOrNil() {
		p, ok := view[r.ID]
		if m, ok := memberOf(r, true, p, ok); ok {
			out = append(out, m)
		}
	}
	for id, p := range view {
		if _, ok := a.find(id); ok {
			continue
		}
		if m, ok := memberOf(record{}, false, p, true); ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(x, y Member) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

func (c *Cluster) status() Status {
	var s Status
	if c.raft == nil {
		return s
	}
	state := c.raft.State()
	s.RaftState = state.String()
	_, leader := c.raft.LeaderWithID()
	s.Leader = string(leader)
	if t := c.table.Load(); t != nil {
		s.Epoch = t.Epoch
	}
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			switch srv.Suffrage {
			case raft.Voter:
				s.Voters++
			case raft.Nonvoter:
				s.NonVoters++
			}
		}
	}
	switch state {
	case raft.Leader:
		// A leader that loses touch with a quorum steps down within
		// LeaderLeaseTimeout.
		s.HasQuorum = true
	case raft.Follower:
		s.HasQuorum = s.Leader != "" && time.Since(c.raft.LastContact()) < 2*c.timing.HeartbeatTimeout
	}
	return s
}

func (c *Cluster) leave(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.leaving.Store(true)
	meta := nodeMeta{ClusterAddr: c.me.ClusterAddr, Meta: c.me.Meta, Leaving: true, Boot: c.boot}.encode()
	c.meta.Store(&meta)
	if err := c.ml.UpdateNode(c.timing.DialTimeout); err != nil {
		c.log.Warn("cannot gossip leaving", "err", err)
	}
	c.log.Info("leaving cluster", "node", c.id)
	c.kick()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for !c.handedOver(ctx) {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("cluster: leave: %w", ctx.Err())
		case <-tick.C:
			continue
		}
		break
	}
	if lerr := c.ml.Leave(c.timing.DialTimeout); lerr != nil {
		err = errors.Join(err, lerr)
	}
	return err
}

// handedOver reports whether a leaving node may go: the agreed table no
// longer names it and raft no longer counts it, or nobody is left to take
// over. A leader that is out of the table hands leadership on.
func (c *Cluster) handedOver(ctx context.Context) bool {
	others := false
	for id, p := range c.gossipView() {
		if id != c.id && (p.state == Alive || p.state == Suspect) && !p.meta.Leaving {
			others = true
		}
	}
	if !others {
		return true
	}
	inTable := false
	if t := c.table.Load(); t != nil {
		_, inTable = slices.BinarySearchFunc(t.Members(), c.id, func(m ring.Member, id string) int { return cmp.Compare(m.ID, id) })
	}
	inRaft := false
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		inRaft = slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return s.ID == raft.ServerID(c.id) })
	}
	if !inTable && inRaft && c.raft.State() == raft.Leader {
		if err := c.raft.LeadershipTransfer().Error(); err != nil {
			c.log.Warn("leadership transfer failed, retrying", "err", err)
		}
	}
	if !inTable && inRaft && c.raft.State() != raft.Leader {
		// Removed servers are not told reliably: ask the leader.
		inRaft = !c.leaderHasRemoved(ctx)
	}
	return !inTable && !inRaft
}

func (c *Cluster) close() error {
	c.closeOnce.Do(func() { c.closeErr = c.shutdown() })
	return c.closeErr
}

func (c *Cluster) shutdown() error {
	c.closed.Store(true)
	close(c.stop)
	var errs []error
	if c.raft != nil {
		errs = append(errs, c.raft.Shutdown().Error())
	}
	if c.trans != nil {
		errs = append(errs, c.trans.Close())
	}
	if c.ml != nil {
		errs = append(errs, c.ml.Shutdown())
	} else if c.gossipT != nil {
		errs = append(errs, c.gossipT.Shutdown())
	}
	if c.ln != nil {
		c.ln.Close()
	}
	if c.stream != nil {
		c.stream.Close()
	}
	c.poolMu.Lock()
	pools := c.pools
	c.pools = map[string]*peerPool{}
	c.poolMu.Unlock()
	for _, p := range pools {
		p.close()
	}
	c.connMu.Lock()
	for conn := range c.conns {
		conn.Close()
	}
	c.connMu.Unlock()
	c.wg.Wait()
	if c.stores.closer != nil {
		errs = append(errs, c.stores.closer.Close())
	}
	return errors.Join(errs...)
}

// track registers a served connection so Close can cut it; false after
// Close.
func (c *Cluster) track(conn net.Conn) bool {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.conns[conn] = struct{}{}
	return true
}

// untrack closes a served connection.
func (c *Cluster) untrack(conn net.Conn) {
	c.forget(conn)
	conn.Close()
}

// forget stops tracking a connection without closing it.
func (c *Cluster) forget(conn net.Conn) {
	c.connMu.Lock()
	delete(c.conns, conn)
	c.connMu.Unlock()
}
