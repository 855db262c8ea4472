//go:build dockertest

package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestCompose starts deploy/compose.yaml and checks what it promises: one
// cluster of three, reached from the host at 127.0.0.1:7001-7003, announcing
// those addresses, so ClusterClient and redis-cli -c seeded with one of them
// follow MOVED to the others. It needs those ports free.
func TestCompose(t *testing.T) {
	image := sluiceImage(t)
	compose := []string{"docker", "compose"}
	if exec.Command("docker", "compose", "version").Run() != nil {
		if _, err := exec.LookPath("docker-compose"); err != nil {
			t.Fatal("TestCompose needs docker compose (the plugin) or docker-compose: apt-get install docker-compose (Debian, Ubuntu) or https://docs.docker.com/compose/install/")
		}
		compose = []string{"docker-compose"}
	}
	project := fmt.Sprintf("sluicedt%d", os.Getpid())
	run := func(args ...string) error {
		args = append(append(compose[1:], "-p", project, "-f", "../../deploy/compose.yaml"), args...)
		cmd := exec.Command(compose[0], args...)
		cmd.Env = append(os.Environ(), "SLUICE_IMAGE="+image, "SLUICE_REQUIREPASS=", "SLUICE_CLUSTER_SECRET=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(append(compose[:1], args...), " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if t.Failed() {
			_ = run("logs", "--tail", "40")
		}
		if err := run("down", "-v", "--timeout", "30"); err != nil {
			t.Error(err)
		}
	})
	if err := run("up", "-d"); err != nil {
		t.Fatal(err)
	}

	const pass = "sluice-dev" // compose.yaml's default
	ctx := context.Background()
	seed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:7001", Password: pass, PoolSize: 1, DialTimeout: time.Second})
	defer seed.Close()
	announced := map[string]bool{"127.0.0.1:7001": true, "127.0.0.1:7002": true, "127.0.0.1:7003": true}
	start := time.Now()
	for {
		//lint:ignore SA1019 CLUSTER SLOTS is what Sluice answers for the clients that still use it
		ranges, err := seed.ClusterSlots(ctx).Result()
		seen := map[string]bool{}
		for _, r := range ranges {
			for _, n := range r.Nodes {
				if !announced[n.Addr] {
					err = fmt.Errorf("CLUSTER SLOTS names %s (%s), want 127.0.0.1:700x", n.Addr, n.ID)
				}
				seen[n.Addr] = true
			}
		}
		if err == nil && len(seen) == 3 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("compose cluster not formed within a minute: %d addresses in CLUSTER SLOTS %v, %v", len(seen), seen, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("compose: CLUSTER SLOTS on 127.0.0.1:7001 announced all 3 nodes at 127.0.0.1:700x %v after up -d", time.Since(start).Round(10*time.Millisecond))

	// One seed, MOVED to the rest.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:7001"}, Password: pass})
	defer cc.Close()
	for i := range 1000 {
		k := fmt.Sprintf("compose:%d", i)
		if err := cc.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("ClusterClient SET %s: %v", k, err)
		}
		if v, err := cc.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("ClusterClient GET %s = %d, %v", k, v, err)
		}
	}
	// A cluster-aware connection to node 1 is sent to the owner's published port.
	var moved string
	for i := 0; moved == ""; i++ {
		if err := seed.Get(ctx, fmt.Sprintf("compose:%d", i)).Err(); err != nil && strings.HasPrefix(err.Error(), "MOVED ") {
			moved = err.Error()
		} else if i > 100 {
			t.Fatalf("no MOVED from 127.0.0.1:7001 for 100 keys (last: %v)", err)
		}
	}
	if f := strings.Fields(moved); len(f) != 3 || !announced[f[2]] {
		t.Fatalf("%q: want MOVED to 127.0.0.1:7002 or :7003", moved)
	}
	t.Logf("compose: a cluster-aware connection to 127.0.0.1:7001 got %q", moved)
	if cli, err := exec.LookPath("redis-cli"); err == nil {
		out, err := exec.Command(cli, "-c", "-p", "7001", "-a", pass, "--no-auth-warning", "GET", "compose:999").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "999" {
			t.Fatalf("redis-cli -c -p 7001 GET compose:999: %q %v", out, err)
		}
	}
	if err := run("stop", "--timeout", "30"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+project, "--format", "{{.Names}} {{.Status}}").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.Contains(line, "Exited (0)") {
			t.Errorf("after docker compose stop: %s, want Exited (0)", line)
		}
	}
	t.Logf("compose: every node exited 0 on stop:\n%s", out)
	t.Logf("SUMMARY TestCompose: ClusterClient seeded with 127.0.0.1:7001 wrote and read 1000 keys, MOVED pointed to published ports, stop exited 0 on all 3")
}
