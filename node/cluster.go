package node

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/ring"
)

// Routing in a cluster (DESIGN §5). Every node accepts every command. A
// command whose keys hash to one slot runs here when this node owns the slot
// in the agreed table; otherwise the client gets -MOVED if it follows
// redirects, and the command is forwarded to the owner if it does not.
//
// A connection follows redirects once it has shown it is cluster-aware, by
// sending READONLY, READWRITE or CLUSTER SLOTS/SHARDS/NODES (what go-redis's
// ClusterClient and rueidis do), or always/never with Config.Redirect.
// Plain clients and redis-cli without -c are forwarded, so both kinds work
// against the same cluster at once. A multi-key command runs where all its
// keys' slots are owned, atomically; only keys owned by different nodes get
// CROSSSLOT. That is laxer than Redis Cluster, which refuses any two slots:
// on a single node (a cluster of one) every multi-key command works as in
// plain Redis. A transaction's keyed commands must be owned here. DBSIZE, KEYS, SCAN, RANDOMKEY and FLUSHALL act on this
// node's keys only, as in Redis Cluster.

// Redirect policies for Config.Redirect.
const (
	RedirectAuto   = "auto"   // MOVED for cluster-aware connections, forwarding for the rest
	RedirectAlways = "always" // MOVED for everyone
	RedirectNever  = "never"  // always forward
)

// errMinority answers writes on a node cut off from the raft quorum.
const errMinority = "CLUSTERDOWN The cluster is down: this node is cut off from a quorum and takes no writes"

// forwardTimeout bounds a forwarded command.
const forwardTimeout = 5 * time.Second

func init() {
	sub := func(name string, arity int, flags Flag, since, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags | flagLoading | flagStale, Since: since, Summary: summary, Handler: h}
	}
	register(
		subcommands(&Command{Name: "cluster", Arity: -2, Flags: flagNoCategory, Group: "cluster", Since: "3.0.0", Summary: "A container for Redis Cluster commands."},
			sub("slots", 2, 0, "3.0.0", "Returns the mapping of cluster slots to nodes.", cmdClusterSlots),
			sub("shards", 2, 0, "7.0.0", "Returns the mapping of cluster slots to shards.", cmdClusterShards),
			sub("nodes", 2, 0, "3.0.0", "Returns the cluster configuration for a node.", cmdClusterNodes),
			sub("info", 2, 0, "3.0.0", "Returns information about the state of a node.", cmdClusterInfo),
			sub("keyslot", 3, 0, "3.0.0", "Returns the hash slot for a key.", cmdClusterKeySlot),
			sub("myid", 2, 0, "3.0.0", "Returns the ID of a node.", cmdClusterMyID),
		),
		&Command{Name: "readonly", Arity: 1, Flags: flagFast | flagLoading | flagStale, Group: "cluster", Since: "3.0.0", Summary: "Enables read-only queries for a connection to a Redis Cluster replica node; marks the connection as following redirects.", Handler: cmdReadOnly},
		&Command{Name: "readwrite", Arity: 1, Flags: flagFast | flagLoading | flagStale, Group: "cluster", Since: "3.0.0", Summary: "Enables read-write queries for a connection to a Reids Cluster replica node; marks the connection as following redirects.", Handler: cmdReadOnly},
	)
}

func cmdReadOnly(c *Client, args [][]byte) {
	if c.n.cluster == nil {
		c.err("ERR This instance has cluster support disabled")
		return
	}
	c.redirects = true
	c.w.SimpleString("OK")
}

// route decides where a keyed command runs. It returns true when the command
// must run here; otherwise it has answered (MOVED, forwarded, CROSSSLOT).
func (c *Client) route(cmd *Command, args [][]byte) bool {
	cl := c.n.cluster
	if cl == nil || c.peer || cmd.FirstKey == 0 {
		return true
	}
	if cmd.keyCount(len(args)) == 0 {
		return true
	}
	table := cl.Table()
	if table == nil {
		c.err("CLUSTERDOWN The cluster has no slot table yet")
		return false
	}
	slot, owner, ok := commandOwner(table, cmd, args)
	if !ok {
		c.err("CROSSSLOT Keys in request don't hash to the same slot")
		return false
	}
	if cmd.Flags&flagWrite != 0 && !cl.HasQuorum() {
		c.err(errMinority)
		return false
	}
	if owner == c.n.id {
		if !c.n.refuses(slot) {
			return true
		}
		c.leaveWrite() // a hand-off must not wait for this write
		// The slot is being handed over (or this node restarted and is
		// not serving yet): wait for the table that moves it.
		ctx, cancel := context.WithTimeout(c.context(), forwardTimeout)
		next, ok := c.n.nextOwner(ctx, slot, owner)
		cancel()
		if !ok {
			c.err("TRYAGAIN the slot is moving; retry")
			return false
		}
		owner = next
	}
	if c.followsRedirects() || c.multi != nil {
		c.moved(uint16(slot), owner)
		return false
	}
	c.forward(owner, uint16(slot), args)
	return false
}

// followsRedirects reports whether the connection is answered with MOVED.
func (c *Client) followsRedirects() bool {
	switch c.n.cfg.Redirect {
	case RedirectAlways:
		return true
	case RedirectNever:
		return false
	}
	return c.redirects
}

func (c *Client) moved(slot uint16, owner string) {
	addr := "unknown:0"
	if m, ok := c.n.cluster.Member(owner); ok && m.Meta.RESPAddr != "" {
		addr = m.Meta.RESPAddr
	}
	c.err("MOVED " + strconv.Itoa(int(slot)) + " " + addr)
}

// forward runs the command on its owner and relays the reply. While tables
// change, the owner this node names may already have given the slot away and
// answers not-owner; the command then waits (up to tableWait) for this node
// to apply a newer table and goes to the owner that one names.
// context is the context of the client's caller (Do's), or Background.
func (c *Client) context() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

func (c *Client) forward(owner string, slot uint16, args [][]byte) {
	ctx, cancel := context.WithTimeout(c.context(), forwardTimeout)
	defer cancel()
	for {
		err := c.n.cluster.Forward(ctx, owner, args, c.w)
		if err == nil {
			c.n.stats.forwarded.Add(1)
			return
		}
		if err == cluster.ErrNotOwner {
			if next, ok := c.n.nextOwner(ctx, slot, owner); ok {
				if owner = next; owner == c.n.id {
					c.call(commands[string(appendLower(c.lower[:0], args[0]))], args)
					return
				}
				continue
			}
		}
		c.n.stats.forwardErrors.Add(1)
		c.forwardErr = err
		c.err("TRYAGAIN forwarding to the slot's owner failed: " + err.Error())
		return
	}
}

// tableWait bounds how long a forwarded command waits for a newer table.
const tableWait = 2 * time.Second

// nextOwner waits until this node's table names an owner of slot other than
// stale, and returns it; false when none comes within tableWait or ctx.
func (n *Node) nextOwner(ctx context.Context, slot uint16, stale string) (string, bool) {
	deadline := time.Now().Add(tableWait)
	for {
		if t := n.cluster.Table(); t != nil && t.Owner(slot) != stale {
			return t.Owner(slot), true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", false
		}
		// Tables are applied by raft on its own goroutine; a short poll
		// keeps this free of a subscription per waiting command.
		time.Sleep(5 * time.Millisecond)
	}
}

// commandOwner returns the slot of the call's first key and the node that
// owns it, and false when its keys are owned by different nodes. The call
// must name at least one key.
func commandOwner(t *ring.Table, cmd *Command, args [][]byte) (uint16, string, bool) {
	slot := ring.KeySlot(args[cmd.FirstKey])
	owner := t.Owner(slot)
	n := cmd.keyCount(len(args))
	for i := 1; i < n; i++ {
		if t.Owner(ring.KeySlot(args[cmd.FirstKey+i*cmd.Step])) != owner {
			return slot, owner, false
		}
	}
	return slot, owner, true
}

// peerHandler serves commands forwarded by other nodes.
type peerHandler struct{ n *Node }

// ServePeer runs a forwarded command if this node owns its slot, and
// returns once its writes are replicated (an error when they were not in
// time: the forwarding node then answers with an error, never with the
// reply).
func (p peerHandler) ServePeer(args [][]byte, w cluster.ReplyWriter) (bool, error) {
	n := p.n
	cmd := commands[string(appendLower(nil, args[0]))]
	if cmd != nil && cmd.keyCount(len(args)) > 0 {
		t := n.cluster.Table()
		if t == nil {
			return false, nil
		}
		if slot, owner, ok := commandOwner(t, cmd, args); !ok || owner != n.id || n.refuses(slot) {
			return false, nil
		}
		if cmd.Flags&flagWrite != 0 && !n.cluster.HasQuorum() {
			return true, Error(errMinority)
		}
	}
	c := n.peers.Get().(*Client)
	defer n.peers.Put(c)
	c.reset()
	c.Exec(w, args)
	if !c.AwaitReplicas() {
		return true, errNoReplicas
	}
	return true, nil
}

// ServeReplicate applies replication records from the owner of their slots.
func (p peerHandler) ServeReplicate(payload []byte) error { return p.n.repl.serveReplicate(payload) }

// HandOff feeds the slots this node gives away or shares in the plan.
func (p peerHandler) HandOff(ctx context.Context, pl cluster.Placement) error {
	return p.n.repl.handOff(ctx, pl)
}

// Bind makes the cluster the node's before it serves any peer: a node that
// joins takes the copies of its new slots while it is still starting.
func (p peerHandler) Bind(c *cluster.Cluster) {
	p.n.cluster = c
	p.n.id = c.ID()
}

// The CLUSTER commands, in Redis Cluster's formats so that cluster clients
// (go-redis ClusterClient, rueidis, redis-cli -c) work unchanged. Sluice
// places replicas per slot rather than per node, so CLUSTER NODES and SHARDS
// show every node as a master of its slots, and CLUSTER SLOTS lists each
// range's replicas.

func (c *Client) clusterTable() (*ring.Table, bool) {
	if c.n.cluster == nil {
		c.err("ERR This instance has cluster support disabled")
		return nil, false
	}
	t := c.n.cluster.Table()
	if t == nil {
		c.err("CLUSTERDOWN The cluster has no slot table yet")
		return nil, false
	}
	return t, true
}

// slotRange is a run of slots with the same owner and replicas.
type slotRange struct {
	start, end uint16
	owner      string
	replicas   []string
}

func slotRanges(t *ring.Table) []slotRange {
	var out []slotRange
	for s := 0; s < ring.Slots; s++ {
		owner, reps := t.Owner(uint16(s)), t.Replicas(uint16(s))
		if n := len(out); n > 0 && out[n-1].owner == owner && sameIDs(out[n-1].replicas, reps) {
			out[n-1].end = uint16(s)
			continue
		}
		out = append(out, slotRange{uint16(s), uint16(s), owner, reps})
	}
	return out
}

func sameIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// splitAddr splits host:port, port 0 when there is none.
func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func (c *Client) writeSlotNode(id string) {
	m, _ := c.n.cluster.Member(id)
	host, port := splitAddr(m.Meta.RESPAddr)
	c.w.Array(4)
	c.w.BulkString(host)
	c.w.Int(int64(port))
	c.w.BulkString(id)
	c.w.Array(0)
}

func cmdClusterSlots(c *Client, args [][]byte) {
	t, ok := c.clusterTable()
	if !ok {
		return
	}
	c.redirects = true
	ranges := slotRanges(t)
	c.w.Array(len(ranges))
	for _, r := range ranges {
		c.w.Array(3 + len(r.replicas))
		c.w.Int(int64(r.start))
		c.w.Int(int64(r.end))
		c.writeSlotNode(r.owner)
		for _, id := range r.replicas {
			c.writeSlotNode(id)
		}
	}
}

// ownedRanges groups the table's ranges by owner, owners sorted.
func ownedRanges(t *ring.Table) ([]string, map[string][][2]uint16) {
	byOwner := map[string][][2]uint16{}
	for _, r := range slotRanges(t) {
		// Adjacent ranges of one owner that differ only in replicas merge.
		rs := byOwner[r.owner]
		if n := len(rs); n > 0 && rs[n-1][1]+1 == r.start {
			rs[n-1][1] = r.end
		} else {
			rs = append(rs, [2]uint16{r.start, r.end})
		}
		byOwner[r.owner] = rs
	}
	owners := make([]string, 0, len(byOwner))
	for id := range byOwner {
		owners = append(owners, id)
	}
	sort.Strings(owners)
	return owners, byOwner
}

func cmdClusterShards(c *Client, args [][]byte) {
	t, ok := c.clusterTable()
	if !ok {
		return
	}
	c.redirects = true
	owners, byOwner := ownedRanges(t)
	c.w.Array(len(owners))
	for _, id := range owners {
		m, _ := c.n.cluster.Member(id)
		host, port := splitAddr(m.Meta.RESPAddr)
		c.w.Map(2)
		c.w.BulkString("slots")
		c.w.Array(2 * len(byOwner[id]))
		for _, r := range byOwner[id] {
			c.w.Int(int64(r[0]))
			c.w.Int(int64(r[1]))
		}
		c.w.BulkString("nodes")
		c.w.Array(1)
		c.w.Map(7)
		c.w.BulkString("id")
		c.w.BulkString(id)
		c.w.BulkString("port")
		c.w.Int(int64(port))
		c.w.BulkString("ip")
		c.w.BulkString(host)
		c.w.BulkString("endpoint")
		c.w.BulkString(host)
		c.w.BulkString("role")
		c.w.BulkString("master")
		c.w.BulkString("replication-offset")
		c.w.Int(0)
		c.w.BulkString("health")
		c.w.BulkString(health(m))
	}
}

func health(m cluster.Member) string {
	if m.State == cluster.Alive {
		return "online"
	}
	return "fail"
}

func cmdClusterNodes(c *Client, args [][]byte) {
	t, ok := c.clusterTable()
	if !ok {
		return
	}
	c.redirects = true
	_, byOwner := ownedRanges(t)
	var b []byte
	for _, m := range c.n.cluster.Members() {
		host, port := splitAddr(m.Meta.RESPAddr)
		_, cport := splitAddr(m.ClusterAddr)
		b = append(b, m.ID...)
		b = append(b, ' ')
		b = append(b, net.JoinHostPort(host, strconv.Itoa(port))...)
		b = append(b, '@')
		b = strconv.AppendInt(b, int64(cport), 10)
		b = append(b, ' ')
		if m.ID == c.n.id {
			b = append(b, "myself,"...)
		}
		b = append(b, "master"...)
		if m.State != cluster.Alive {
			b = append(b, ",fail"...)
		}
		b = append(b, " - 0 0 "...)
		b = strconv.AppendUint(b, t.Epoch, 10)
		if m.State == cluster.Alive {
			b = append(b, " connected"...)
		} else {
			b = append(b, " disconnected"...)
		}
		for _, r := range byOwner[m.ID] {
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(r[0]), 10)
			if r[1] != r[0] {
				b = append(b, '-')
				b = strconv.AppendInt(b, int64(r[1]), 10)
			}
		}
		b = append(b, '\n')
	}
	c.w.Verbatim("txt", b)
}

func cmdClusterInfo(c *Client, args [][]byte) {
	if c.n.cluster == nil {
		c.err("ERR This instance has cluster support disabled")
		return
	}
	st := c.n.cluster.Status()
	t := c.n.cluster.Table()
	state, assigned, size := "fail", 0, 0
	if t != nil {
		owners, _ := ownedRanges(t)
		state, assigned, size = "ok", ring.Slots, len(owners)
	}
	if !c.n.cluster.HasQuorum() {
		state = "fail" // cut off from the quorum: no writes here
	}
	members := c.n.cluster.Members()
	quorum := "yes"
	if !st.HasQuorum {
		quorum = "no"
	}
	var b []byte
	b = field(b, "cluster_state", state)
	b = fieldInt(b, "cluster_slots_assigned", int64(assigned))
	b = fieldInt(b, "cluster_slots_ok", int64(assigned))
	b = fieldInt(b, "cluster_slots_pfail", 0)
	b = fieldInt(b, "cluster_slots_fail", 0)
	b = fieldInt(b, "cluster_known_nodes", int64(len(members)))
	b = fieldInt(b, "cluster_size", int64(size))
	b = fieldInt(b, "cluster_current_epoch", int64(st.Epoch))
	b = fieldInt(b, "cluster_my_epoch", int64(st.Epoch))
	b = field(b, "cluster_leader", st.Leader)
	b = field(b, "cluster_raft_state", strings.ToLower(st.RaftState))
	b = field(b, "cluster_quorum", quorum)
	b = fieldInt(b, "cluster_voters", int64(st.Voters))
	b = fieldInt(b, "cluster_nonvoters", int64(st.NonVoters))
	if t != nil {
		b = fieldInt(b, "cluster_replicas", int64(t.ReplicaCount()))
	}
	b = fieldInt(b, "cluster_forwarded_commands", c.n.stats.forwarded.Load())
	c.w.Verbatim("txt", b)
}

func cmdClusterKeySlot(c *Client, args [][]byte) {
	c.w.Int(int64(ring.KeySlot(args[2])))
}

func cmdClusterMyID(c *Client, args [][]byte) {
	c.w.BulkString(c.n.id)
}
