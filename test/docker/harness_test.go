//go:build dockertest

package docker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	password = "sluice-dockertest"
	// clusterSecret is base64 of 32 bytes: the nodes authenticate each
	// other on the cluster port, as a deployment should.
	clusterSecret = "c2x1aWNlLWRvY2tlcnRlc3QtY2x1c3Rlci1zZWNyZXQ="
	// label marks every container, network and volume the tests create, so
	// a run can remove what an interrupted earlier run left behind.
	label = "sluice.dockertest"
	// slots is Redis Cluster's slot count.
	slots = 16384
)

// go-redis logs failed dials itself; the tests count errors instead.
func init() { redis.SetLogger(quietLogger{}) }

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

const installHelp = `these tests run Sluice in Docker containers and need a Docker engine:
  Debian/Ubuntu:  apt-get install docker.io && systemctl start docker
  elsewhere:      https://docs.docker.com/engine/install/
and a user that may use it (root, or a member of the docker group).
Run them with: make test-cluster`

// docker runs the docker CLI and returns its trimmed output; the error
// carries the output.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, s)
	}
	return s, nil
}

// mustDocker is docker that fails the test.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := docker(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	imageOnce sync.Once
	imageName string
	imageErr  error
)

// sluiceImage checks for a Docker engine and returns the image to run:
// SLUICE_IMAGE when set (make test-cluster builds it), else sluice:dev built
// now with make docker. Missing Docker fails the test with what to install.
func sluiceImage(t testing.TB) string {
	t.Helper()
	imageOnce.Do(func() {
		if _, err := exec.LookPath("docker"); err != nil {
			imageErr = fmt.Errorf("no docker command on PATH\n%s", installHelp)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
			imageErr = fmt.Errorf("no Docker engine answers (docker info: %v)\n%s", out, installHelp)
			return
		}
		cleanLeftovers()
		if imageName = os.Getenv("SLUICE_IMAGE"); imageName == "" {
			imageName = "sluice:dev"
			out, err := exec.Command("make", "-C", "../..", "docker", "IMAGE="+imageName).CombinedOutput()
			if err != nil {
				imageErr = fmt.Errorf("make docker: %v\n%s", err, out)
				return
			}
		}
		if _, err := docker(ctx, "image", "inspect", imageName); err != nil {
			imageErr = fmt.Errorf("image %s: %v (build it with make docker, or unset SLUICE_IMAGE)", imageName, err)
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageName
}

// labelArg labels what this test process creates with its PID.
var labelArg = label + "=" + strconv.Itoa(os.Getpid())

// cleanLeftovers removes the containers, networks and volumes that earlier
// runs of these tests left when they were interrupted: those labelled with
// the PID of a process that no longer exists (a run going on beside this
// one keeps its own).
func cleanLeftovers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, kind := range [][]string{{"container", "ls", "-a"}, {"network", "ls"}, {"volume", "ls"}} {
		id := "{{.ID}}"
		if kind[0] == "volume" {
			id = "{{.Name}}"
		}
		format := id + ` {{.Label "` + label + `"}}`
		out, _ := docker(ctx, append(kind, "--filter", "label="+label, "--format", format)...)
		for _, line := range strings.Split(out, "\n") {
			id, pid, _ := strings.Cut(strings.TrimSpace(line), " ")
			if p, err := strconv.Atoi(pid); id == "" || err != nil || syscall.Kill(p, 0) == nil {
				continue
			}
			if kind[0] == "container" {
				_, _ = docker(ctx, "rm", "-f", "-v", id)
			} else {
				_, _ = docker(ctx, kind[0], "rm", id)
			}
		}
	}
}

// node is one container.
type node struct {
	name      string // node name and ID: n1, n2, n3
	container string
	volume    string
	peerIP    string // gossip and cluster port (--advertise)
	clientIP  string // RESP as the test reaches it (--announce-addr)
}

// addr is the node's RESP address from the host.
func (n *node) addr() string { return n.clientIP + ":6379" }

// cluster is three containers on two private networks.
type cluster struct {
	t         testing.TB
	image     string
	id        string // prefix of every name
	peerNet   string
	clientNet string
	nodes     []*node
}

// startCluster creates the networks and three nodes (n1 founds the cluster,
// n2 and n3 join it), each started with extra flags too, and waits until
// they agree on a table.
func startCluster(t testing.TB, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, image: sluiceImage(t), id: fmt.Sprintf("sluicedt-%d-%d", os.Getpid(), rand.IntN(1e6))}
	t.Cleanup(c.remove)
	var peerSubnet, clientSubnet string
	c.peerNet, peerSubnet = c.createNetwork("peer")
	c.clientNet, clientSubnet = c.createNetwork("client")
	for i := 1; i <= 3; i++ {
		n := &node{
			name:      "n" + strconv.Itoa(i),
			container: c.id + "-n" + strconv.Itoa(i),
			volume:    c.id + "-n" + strconv.Itoa(i) + "-data",
			peerIP:    peerSubnet + strconv.Itoa(10+i),
			clientIP:  clientSubnet + strconv.Itoa(10+i),
		}
		args := []string{
			"--node-name", n.name, "--advertise", n.peerIP, "--announce-addr", n.addr(),
			"--requirepass", password, "--cluster-secret", clusterSecret,
		}
		if i > 1 {
			args = append(args, "--join", c.nodes[0].peerIP+":7946")
		}
		args = append(args, extra...)
		mustDocker(t, "volume", "create", "--label", labelArg, n.volume)
		mustDocker(t, append([]string{"create", "--name", n.container, "--label", labelArg,
			"--hostname", n.name, "--network", c.peerNet, "--ip", n.peerIP,
			"-v", n.volume + ":/data", "--stop-timeout", "30", c.image}, args...)...)
		mustDocker(t, "network", "connect", "--ip", n.clientIP, c.clientNet, n.container)
		mustDocker(t, "start", n.container)
		c.nodes = append(c.nodes, n)
		c.waitUp(n)
	}
	took, err := c.waitConverged(c.nodes, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 containers agreed on the slot table %v after the last was up", took.Round(time.Millisecond))
	return c
}

// createNetwork creates a bridge network with a /24 chosen at random in
// 10.201.0.0-10.250.255.0 (docker needs a configured subnet for static IPs),
// retrying when one overlaps a network that exists, and returns its name
// and the subnet's prefix ("10.x.y.").
func (c *cluster) createNetwork(role string) (name, prefix string) {
	name = c.id + "-" + role
	var err error
	for range 20 {
		prefix = fmt.Sprintf("10.%d.%d.", 201+rand.IntN(50), rand.IntN(256))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = docker(ctx, "network", "create", "--driver", "bridge", "--label", labelArg,
			"--subnet", prefix+"0/24", name)
		cancel()
		if err == nil {
			return name, prefix
		}
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	c.t.Fatal(err)
	return "", ""
}

// remove logs the tail of each node's log when the test failed (all of it
// when SLUICE_TEST_LOGS is set, pass or fail), then removes the containers,
// volumes and networks.
func (c *cluster) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tail := "60"
	if os.Getenv("SLUICE_TEST_LOGS") != "" {
		tail = "all"
	}
	for _, n := range c.nodes {
		if c.t.Failed() || tail == "all" {
			logs, _ := docker(ctx, "logs", "--tail", tail, n.container)
			c.t.Logf("last lines of %s's log:\n%s", n.name, logs)
		}
		_, _ = docker(ctx, "rm", "-f", "-v", n.container)
		_, _ = docker(ctx, "volume", "rm", n.volume)
	}
	_, _ = docker(ctx, "network", "rm", c.peerNet, c.clientNet)
}

// running reports the container's state: running, and its exit code once
// it stopped.
func (c *cluster) state(n *node) (running bool, exitCode int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := docker(ctx, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", n.container)
	if err != nil {
		return false, 0, err
	}
	r, code, _ := strings.Cut(out, " ")
	exitCode, err = strconv.Atoi(code)
	return r == "true", exitCode, err
}

// waitUp waits until the node answers PING, failing the test if its
// container stops first or it takes over a minute.
func (c *cluster) waitUp(n *node) time.Duration {
	c.t.Helper()
	start := time.Now()
	cl := c.client(n)
	defer cl.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := cl.Ping(ctx).Err()
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if running, code, _ := c.state(n); !running {
			logs, _ := docker(context.Background(), "logs", "--tail", "30", n.container)
			c.t.Fatalf("%s exited with status %d before it answered PING:\n%s", n.name, code, logs)
		}
		if time.Since(start) > time.Minute {
			c.t.Fatalf("%s did not answer PING within a minute: %v", n.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client is a plain (not cluster-aware) connection pool to one node: the
// node forwards commands for keys it does not own.
func (c *cluster) client(n *node) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: n.addr(), Password: password,
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
		MaxRetries: -1, PoolSize: 4, ContextTimeoutEnabled: true,
	})
}

// clusterClient is go-redis's ClusterClient seeded with the given nodes: it
// learns the table from CLUSTER SLOTS and follows MOVED. Both clients honour
// a context's deadline on the socket too (ContextTimeoutEnabled).
func (c *cluster) clusterClient(nodes ...*node) *redis.ClusterClient {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr())
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, Password: password,
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
		MaxRedirects: 8, PoolSize: 8, ContextTimeoutEnabled: true,
	})
}

// clusterInfo reads CLUSTER INFO from a node.
func (c *cluster) clusterInfo(n *node) (map[string]string, error) {
	cl := c.client(n)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

// owners reads CLUSTER SLOTS from a node: each slot's primary, "" where
// none, the RESP address the node announces for each member, and how many
// slots have no replica.
func (c *cluster) owners(n *node) (owner []string, addrs map[string]string, unreplicated int, err error) {
	cl := c.client(n)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	//lint:ignore SA1019 CLUSTER SLOTS is what Sluice answers for the clients that still use it
	ranges, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, nil, 0, err
	}
	owner = make([]string, slots)
	addrs = map[string]string{}
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		for s := r.Start; s <= r.End && s < slots; s++ {
			owner[s] = r.Nodes[0].ID
		}
		if len(r.Nodes) == 1 {
			unreplicated += r.End - r.Start + 1
		}
		for _, rn := range r.Nodes {
			addrs[rn.ID] = rn.Addr
		}
	}
	return owner, addrs, unreplicated, nil
}

// converged checks that every node in nodes reports cluster_state ok, the
// same epoch and the same primaries, that every slot's primary is one of
// nodes and each of nodes is the primary of some slots (a restarted node
// has its share back), and that each announces the address the test
// reaches it at (--announce-addr).
func (c *cluster) converged(nodes []*node) error {
	live := map[string]bool{}
	for _, n := range nodes {
		live[n.name] = true
	}
	var epoch string
	var first []string
	for i, n := range nodes {
		info, err := c.clusterInfo(n)
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.name, err)
		}
		if info["cluster_state"] != "ok" {
			return fmt.Errorf("%s: cluster_state %q", n.name, info["cluster_state"])
		}
		if i == 0 {
			epoch = info["cluster_current_epoch"]
		} else if info["cluster_current_epoch"] != epoch {
			return fmt.Errorf("epochs differ: %s on %s, %s on %s", epoch, nodes[0].name, info["cluster_current_epoch"], n.name)
		}
		owner, addrs, _, err := c.owners(n)
		if err != nil {
			return fmt.Errorf("%s: CLUSTER SLOTS: %w", n.name, err)
		}
		for _, m := range nodes {
			if !slices.Contains(owner, m.name) {
				return fmt.Errorf("%s: %s is the primary of no slot", n.name, m.name)
			}
			if addrs[m.name] != m.addr() {
				return fmt.Errorf("%s: CLUSTER SLOTS gives %s's address as %q, want %s", n.name, m.name, addrs[m.name], m.addr())
			}
		}
		for s, o := range owner {
			if !live[o] {
				return fmt.Errorf("%s: slot %d's primary is %q", n.name, s, o)
			}
			if first != nil && first[s] != o {
				return fmt.Errorf("slot %d: primary %s on %s, %s on %s", s, first[s], nodes[0].name, o, n.name)
			}
		}
		first = owner
	}
	return nil
}

// waitConverged polls converged until it holds or timeout passes, and
// returns how long it took.
func (c *cluster) waitConverged(nodes []*node, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for i := 0; ; i++ {
		err := c.converged(nodes)
		if err == nil {
			return time.Since(start), nil
		}
		if i%10 == 9 { // every 2 s or so: a node that exited will not converge
			for _, n := range nodes {
				if running, code, _ := c.state(n); !running {
					logs, _ := docker(context.Background(), "logs", "--tail", "30", n.container)
					return time.Since(start), fmt.Errorf("%s exited with status %d while waiting for %d nodes to converge (%w); its log ends:\n%s", n.name, code, len(nodes), err, logs)
				}
			}
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%d nodes did not converge within %v: %w", len(nodes), timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill sends SIGKILL (docker kill).
func (c *cluster) kill(n *node) {
	c.t.Helper()
	mustDocker(c.t, "kill", "--signal", "KILL", n.container)
}

// stop sends SIGTERM and waits up to 30 s (docker stop), then returns the
// exit status and how long the node took to exit.
func (c *cluster) stop(n *node) (int, time.Duration) {
	c.t.Helper()
	start := time.Now()
	mustDocker(c.t, "stop", "--time", "30", n.container)
	took := time.Since(start)
	running, code, err := c.state(n)
	if err != nil || running {
		c.t.Fatalf("%s after docker stop: running %v, %v", n.name, running, err)
	}
	return code, took
}

// start starts a stopped container again (same volume, same addresses) and
// waits until it answers PING.
func (c *cluster) start(n *node) time.Duration {
	c.t.Helper()
	start := time.Now()
	mustDocker(c.t, "start", n.container)
	c.waitUp(n)
	return time.Since(start)
}

// others is every node but n.
func (c *cluster) others(n *node) []*node {
	var out []*node
	for _, m := range c.nodes {
		if m != n {
			out = append(out, m)
		}
	}
	return out
}

// errClass names an error for counting: the error code of a server reply
// (CLUSTERDOWN, MOVED, ERR...), or timeout, refused, reset, eof, closed.
func errClass(err error) string {
	var re redis.Error
	if errors.As(err, &re) {
		if code, _, _ := strings.Cut(re.Error(), " "); code != "" {
			return code
		}
	}
	s := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(s, "timeout"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "connection reset"):
		return "reset"
	case strings.Contains(s, "EOF"):
		return "eof"
	case strings.Contains(s, "closed"):
		return "closed"
	case strings.Contains(s, "no route") || strings.Contains(s, "unreachable"):
		return "unreachable"
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// keySlot is Redis Cluster's slot of a key: CRC16 (XMODEM) of the key, or
// of its first non-empty {hash tag}, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slots
}
