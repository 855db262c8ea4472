package test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/wire/resp"
)

// Multi-process cluster tests: real sluice binaries on loopback, joined by
// gossip, agreeing on the slot table through raft, reached by real clients.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sluiceBinary builds cmd/sluice once for the package's tests.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/sluice").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// clusterNode is one sluice process.
type clusterNode struct {
	name   string
	spec   nodeSpec
	addr   string // RESP
	gossip string
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan error    // the exit status, once (waitPing may take it)
	done   chan struct{} // closed when the process has exited
	err    error         // the exit status, valid once done is closed
}

func startClusterNode(t *testing.T, name string, join ...string) *clusterNode {
	t.Helper()
	return launchNode(t, nodeSpec{name: name, port: freePort(t), gossip: freePort(t), cport: freePort(t), join: join})
}

// nodeSpec is how a sluice process is started; the same spec starts it
// again (same ports, same data dir) after it stopped.
type nodeSpec struct {
	name                string
	port, gossip, cport int
	dir                 string   // --data-dir, "" for none
	join                []string // gossip addresses
	extra               []string // more flags
}

func launchNode(t *testing.T, spec nodeSpec) *clusterNode {
	t.Helper()
	name := spec.name
	args := []string{
		"--node-name", name, "--bind", "127.0.0.1", "--port", strconv.Itoa(spec.port),
		"--gossip-port", strconv.Itoa(spec.gossip), "--cluster-port", strconv.Itoa(spec.cport),
		"--admin-port", "0", "--fb-port", "0",
	}
	if len(spec.join) > 0 {
		args = append(args, "--join", strings.Join(spec.join, ","))
	}
	if spec.dir != "" {
		args = append(args, "--data-dir", spec.dir)
	}
	args = append(args, spec.extra...)
	cn := &clusterNode{name: name, spec: spec, addr: "127.0.0.1:" + strconv.Itoa(spec.port), gossip: "127.0.0.1:" + strconv.Itoa(spec.gossip),
		logs: &lockedBuffer{}, exited: make(chan error, 1), done: make(chan struct{})}
	cn.cmd = exec.Command(sluiceBinary(t), args...)
	cn.cmd.Stdout, cn.cmd.Stderr = cn.logs, cn.logs
	if err := cn.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cn.err = cn.cmd.Wait()
		close(cn.done)
		cn.exited <- cn.err
	}()
	t.Cleanup(func() {
		_ = cn.cmd.Process.Kill()
		<-cn.done
		if t.Failed() {
			t.Logf("node %s log:\n%s", name, cn.logs)
		}
	})
	if err := waitPing(cn.addr, cn.exited, 30*time.Second); err != nil {
		t.Fatalf("node %s: %v\n%s", name, err, cn.logs)
	}
	return cn
}

// stop sends SIGTERM and waits for the exit status.
func (cn *clusterNode) stop(t *testing.T) error {
	t.Helper()
	if err := cn.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-cn.done:
		return cn.err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("node %s did not exit within 30s of SIGTERM", cn.name)
	}
}

// clusterInfo reads CLUSTER INFO as a map.
func clusterInfo(addr string) map[string]string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	rc := &rawConn{conn: c, r: bufio.NewReader(c)}
	r := rc.Do("CLUSTER", "INFO")
	out := map[string]string{}
	for _, line := range strings.Split(r.Str, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// waitConverged waits until every node reports state ok, the same number of
// known nodes and the same epoch, and returns how long that took.
func waitConverged(t *testing.T, nodes []*clusterNode, known int) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		epochs := map[string]bool{}
		ok := true
		for _, n := range nodes {
			info := clusterInfo(n.addr)
			if info["cluster_state"] != "ok" || info["cluster_known_nodes"] != strconv.Itoa(known) || info["cluster_size"] != strconv.Itoa(known) {
				ok = false
				break
			}
			epochs[info["cluster_current_epoch"]] = true
		}
		if ok && len(epochs) == 1 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				t.Logf("%s: %v", n.name, clusterInfo(n.addr))
			}
			t.Fatalf("%d nodes did not converge on %d members within 60s", len(nodes), known)
		}
		time.Sleep(50 * time.Millisecond) // polling real processes: no clock to inject
	}
}

func TestClusterOfProcesses(t *testing.T) {
	a := startClusterNode(t, "node-a")
	joinStart := time.Now()
	b := startClusterNode(t, "node-b", a.gossip)
	c := startClusterNode(t, "node-c", a.gossip)
	nodes := []*clusterNode{a, b, c}
	waitConverged(t, nodes, 3)
	t.Logf("2 nodes joined a running one and all 3 agreed on the table %v after the first joiner was started", time.Since(joinStart))
	ctx := testContext(t)

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{a.addr, b.addr, c.addr}})
	defer cc.Close()

	t.Run("ClusterClient round trip", func(t *testing.T) {
		for i := range 1000 {
			if err := cc.Set(ctx, "k:"+strconv.Itoa(i), i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 1000 {
			if v, err := cc.Get(ctx, "k:"+strconv.Itoa(i)).Int(); err != nil || v != i {
				t.Fatalf("k:%d = %d, %v", i, v, err)
			}
		}
		// MGET with one hash tag stays on one node; across slots it is CROSSSLOT.
		cc.MSet(ctx, "{user:7}:name", "ada", "{user:7}:lang", "go")
		if v, err := cc.MGet(ctx, "{user:7}:name", "{user:7}:lang").Result(); err != nil || fmt.Sprint(v) != "[ada go]" {
			t.Fatalf("MGET with a hash tag: %v %v", v, err)
		}
		if err := redis.NewClient(&redis.Options{Addr: a.addr}).MGet(ctx, "k:1", "k:2", "k:3").Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
			t.Fatalf("MGET across slots: %v, want CROSSSLOT", err)
		}
	})

	t.Run("plain clients are forwarded", func(t *testing.T) {
		for _, n := range nodes {
			plain := redis.NewClient(&redis.Options{Addr: n.addr})
			for i := range 300 {
				key := "plain:" + n.name + ":" + strconv.Itoa(i)
				if err := plain.Set(ctx, key, i, 0).Err(); err != nil {
					t.Fatal(err)
				}
				if v, err := cc.Get(ctx, key).Int(); err != nil || v != i {
					t.Fatalf("%s through %s then the owner: %d %v", key, n.name, v, err)
				}
			}
			plain.Close()
		}
		forwarded := 0
		for _, n := range nodes {
			f, _ := strconv.Atoi(clusterInfo(n.addr)["cluster_forwarded_commands"])
			forwarded += f
		}
		if forwarded == 0 {
			t.Fatal("no command was forwarded")
		}
	})

	t.Run("redis-cli -c", func(t *testing.T) {
		cli := lookTool(t, "redis-cli")
		host, port, _ := net.SplitHostPort(b.addr)
		for i := range 20 {
			key := "cli:" + strconv.Itoa(i)
			out, err := exec.Command(cli, "-c", "-h", host, "-p", port, "SET", key, "v"+strconv.Itoa(i)).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "OK" {
				t.Fatalf("redis-cli -c SET: %q %v", out, err)
			}
			if v, _ := cc.Get(ctx, key).Result(); v != "v"+strconv.Itoa(i) {
				t.Fatalf("%s = %q", key, v)
			}
		}
	})

	t.Run("one lease across the cluster", func(t *testing.T) {
		if err := cc.Do(ctx, "CACHE.SET", "hot", "v", "FRESH", "60000", "STALE", "60000").Err(); err != nil {
			t.Fatal(err)
		}
		if err := cc.Do(ctx, "CACHE.INVALIDATE", "hot").Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		states := map[string]int{}
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := dialRaw(t, nodes[i%3].addr)
				r := c.Do("CACHE.GET", "hot")
				mu.Lock()
				defer mu.Unlock()
				if len(r.Elems) == 3 {
					states[r.Elems[0].Str]++
				} else {
					states[r.String()]++
				}
			}()
		}
		wg.Wait()
		if states["revalidate"] != 1 || states["stale"] != 199 {
			t.Fatalf("200 readers of a stale key over 3 nodes: %v, want 1 revalidate and 199 stale", states)
		}
	})

	t.Run("exact limit across the cluster", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := redis.NewClient(&redis.Options{Addr: nodes[i%3].addr, PoolSize: 1})
				defer c.Close()
				cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
					for range 100 {
						p.Do(ctx, "RL.TAKE", "shared-bucket", "LIMIT", 1000, "PERIOD", 86400000)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				mine := 0
				for _, cmd := range cmds {
					if r, err := cmd.(*redis.Cmd).Int64Slice(); err == nil && len(r) == 5 && r[0] == 0 {
						mine++
					}
				}
				mu.Lock()
				allowed += mine
				mu.Unlock()
			}()
		}
		wg.Wait()
		if allowed != 1000 {
			t.Fatalf("5,000 takes over 3 nodes against 1,000 tokens admitted %d, want exactly 1,000", allowed)
		}
	})

	t.Run("forwarding overhead", func(t *testing.T) {
		key := "overhead"
		if err := cc.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		slot := int(clusterKeySlot(t, a.addr, key))
		owner, other := ownerOf(t, cc, slot, nodes)
		measure := func(addr string) time.Duration {
			c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
			defer c.Close()
			c.Get(ctx, key)
			start := time.Now()
			for range 2000 {
				c.Get(ctx, key)
			}
			return time.Since(start) / 2000
		}
		direct, via := measure(owner.addr), measure(other.addr)
		t.Logf("GET through the owner %v, through a non-owner %v (%.2fx)", direct, via, float64(via)/float64(direct))
	})

	t.Run("an embedded node joins the processes", func(t *testing.T) {
		n, err := node.New(node.Config{NodeName: "embedded", Logger: discardLogger(), Cluster: &cluster.Config{BindAddr: "127.0.0.1", Join: []string{a.gossip}}})
		if err != nil {
			t.Fatal(err)
		}
		// It owns slots, and cluster clients dial owners, so it serves RESP too.
		srv, err := resp.New(n, resp.Config{Addr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		n.Attach(srv)
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		closed := false
		t.Cleanup(func() {
			if !closed {
				_ = n.Close(context.Background())
			}
		})
		waitConverged(t, nodes, 4)
		for deadline := time.Now().Add(30 * time.Second); len(n.Cluster().Table().Members()) != 4; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the embedded node never served the table with all 4 members")
			}
		}
		for i := range 200 {
			key := "embedded:" + strconv.Itoa(i)
			if err := n.Set(ctx, key, []byte(key), 0); err != nil {
				t.Fatal(err)
			}
			if v, err := cc.Get(ctx, key).Result(); err != nil || v != key {
				t.Fatalf("%s written in-process, read by ClusterClient: %q %v", key, v, err)
			}
		}
		closed = true
		if err := n.Close(ctx); err != nil {
			t.Fatalf("closing the embedded node: %v", err)
		}
		waitConverged(t, nodes, 3)
	})

	t.Run("a fourth node joins and a node leaves", func(t *testing.T) {
		joinStart := time.Now()
		d := startClusterNode(t, "node-d", b.gossip)
		waitConverged(t, []*clusterNode{a, b, c, d}, 4)
		t.Logf("4 nodes agreed on the table %v after the fourth was started", time.Since(joinStart))
		if n := len(ownedSlots(t, d.addr, "node-d")); n < 2000 || n > 6000 {
			t.Fatalf("the new node owns %d slots, want about 4096", n)
		}
		if err := cc.Set(ctx, "after-join", "ok", 0).Err(); err != nil {
			t.Fatal(err)
		}
		leaveStart := time.Now()
		if err := d.stop(t); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		waitConverged(t, nodes, 3)
		t.Logf("the fourth exited 0 on SIGTERM and 3 nodes agreed on a table without it %v after the signal", time.Since(leaveStart))
	})
}

func clusterKeySlot(t *testing.T, addr, key string) int64 {
	r := dialRaw(t, addr).Do("CLUSTER", "KEYSLOT", key)
	n, _ := r.Int()
	return n
}

// ownerOf returns the node that owns slot and one that does not.
func ownerOf(t *testing.T, cc *redis.ClusterClient, slot int, nodes []*clusterNode) (owner, other *clusterNode) {
	//lint:ignore SA1019 CLUSTER SLOTS is what Sluice must answer for the clients that still use it
	slots, err := cc.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if slot >= s.Start && slot <= s.End {
			for _, n := range nodes {
				if n.addr == s.Nodes[0].Addr {
					owner = n
				} else if other == nil {
					other = n
				}
			}
		}
	}
	if owner == nil || other == nil {
		t.Fatalf("slot %d has no owner among the nodes", slot)
	}
	return owner, other
}

// ownedSlots returns the slots CLUSTER SLOTS on addr assigns to the node id.
func ownedSlots(t *testing.T, addr, id string) []int {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	//lint:ignore SA1019 CLUSTER SLOTS is what Sluice must answer for the clients that still use it
	slots, err := c.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, s := range slots {
		if s.Nodes[0].ID == id {
			for i := s.Start; i <= s.End; i++ {
				out = append(out, i)
			}
		}
	}
	return out
}

// discardLogger keeps an in-process node quiet.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
