//go:build dockertest

package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sizes of the data set a fault is counted against.
const (
	nKeys    = 10000
	nBuckets = 100
)

// report collects the lines of a test's summary, logged at its end whether
// it passed or not, so the numbers can be quoted.
type report struct {
	t     *testing.T
	name  string
	lines []string
	short []string
}

func (r *report) add(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.t.Log(s)
	r.lines = append(r.lines, s)
}

// summary adds a fragment to the one-line summary.
func (r *report) summary(format string, args ...any) {
	r.short = append(r.short, fmt.Sprintf(format, args...))
}

func (r *report) print() {
	r.t.Logf("==== %s report ====\n%s\nSUMMARY %s: %s", r.name, strings.Join(r.lines, "\n"), r.name, strings.Join(r.short, " | "))
}

// TestKillAndRestart runs three nodes with the default replication (one
// replica, synchronous) through a SIGKILL, a restart of the killed node and a
// rolling restart with SIGTERM, under continuous load, and counts.
func TestKillAndRestart(t *testing.T) {
	c := startCluster(t)
	r := &report{t: t, name: "TestKillAndRestart"}
	defer r.print()
	ctx := context.Background()

	all := c.clusterClient(c.nodes...)
	defer all.Close()
	// Keys to spare: writing goes on while docker kill runs.
	ds := newDataset("f", 10*nKeys, nBuckets)
	l := startLoad(c.clusterClient(c.nodes...), "setup")
	t.Cleanup(l.finish)

	// 1. Drain the buckets, write 10,000 keys, then SIGKILL one node while
	// more writes stream in: every write that got OK must survive.
	victim, survivors := c.nodes[1], c.others(c.nodes[1])
	start := time.Now()
	if failed, err := ds.drain(ctx, all); failed > 0 {
		t.Fatalf("draining %d buckets in a healthy cluster: %d failed: %v", nBuckets, failed, err)
	}
	info, _ := c.clusterInfo(victim)
	l.setPhase("kill")
	during, killTook, killEnd, err := ds.writeRacingKill(ctx, all, nKeys, func() error {
		_, err := docker(context.Background(), "kill", "--signal", "KILL", victim.container)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.add("drained %d buckets to %d tokens, wrote keys in pipelines of 100 and ran docker kill -s KILL %s (raft state %s) after %d, writing on until it returned (%v): %d writes got OK (%d while docker kill ran), %v in all",
		nBuckets, bucketLeft, victim.name, info["cluster_raft_state"], nKeys, killTook.Round(time.Millisecond), len(ds.keys), during, time.Since(start).Round(time.Millisecond))
	if len(ds.keys) < nKeys {
		t.Errorf("only %d of the first %d writes got OK in a healthy cluster", len(ds.keys), nKeys)
	}
	if _, err := c.waitConverged(survivors, time.Minute); err != nil {
		t.Fatalf("after SIGKILL of %s: %v", victim.name, err)
	}
	took := time.Since(killEnd)
	_, _, unreplicated, _ := c.owners(survivors[0])
	r.add("kill: the 2 survivors served every slot without %s within %v of docker kill returning, %d slots without a replica then",
		victim.name, took.Round(10*time.Millisecond), unreplicated)
	survivor := c.clusterClient(survivors...)
	defer survivor.Close()
	n := ds.countTwice(ctx, survivor, c, survivors, r, "kill")
	r.add("kill (sync replication): %v", n)
	r.summary("kill: %d/%d acknowledged keys lost, %d unreadable, %d/%d buckets fuller, failover %v",
		n.lost, len(ds.keys), n.unreadable, n.fuller, nBuckets, took.Round(100*time.Millisecond))
	if n.lost != 0 || n.unreadable != 0 || n.fuller != 0 || n.bucketErrs != 0 {
		t.Errorf("after a SIGKILL with synchronous replication: %v (first lost %q, first fuller %q, last error %v); want none lost, unreadable or fuller",
			n, n.firstLost, n.firstFuller, n.lastErr)
	}

	// 2a. The killed node comes back with its data dir and rejoins.
	l.setPhase("rejoin")
	up := c.start(victim)
	took, err = c.waitConverged(c.nodes, time.Minute)
	if err != nil {
		t.Fatalf("after restarting %s: %v", victim.name, err)
	}
	killed := n
	n = ds.countTwice(ctx, all, c, c.nodes, r, "rejoin")
	r.add("rejoin: %s answered PING %v after docker start and the 3 agreed on a table %v later; %v",
		victim.name, up.Round(10*time.Millisecond), took.Round(10*time.Millisecond), n)
	r.summary("rejoin %v: %d more keys lost, %d more buckets fuller", (up + took).Round(100*time.Millisecond), n.lost-killed.lost, n.fuller-killed.fuller)
	if n.lost != killed.lost || n.fuller != killed.fuller || n.unreadable != 0 || n.bucketErrs != 0 {
		t.Errorf("the killed node's rejoin: %v, after the kill %v (first lost %q, first fuller %q, last error %v); want nothing more lost, fuller or unreadable",
			n, killed, n.firstLost, n.firstFuller, n.lastErr)
	}

	// 2b. Rolling restart with SIGTERM, from a complete data set.
	if failed, err := ds.write(ctx, all); failed > 0 {
		t.Fatalf("rewriting the keys before the rolling restart: %d failed: %v", failed, err)
	}
	if failed, err := ds.drain(ctx, all); failed > 0 {
		t.Fatalf("draining the buckets before the rolling restart: %d failed: %v", failed, err)
	}
	l.setPhase("rolling")
	var codes []string
	for _, nd := range c.nodes {
		code, stopTook := c.stop(nd)
		codes = append(codes, fmt.Sprint(code))
		if code != 0 {
			t.Errorf("%s exited with status %d on SIGTERM, want 0", nd.name, code)
		}
		up := c.start(nd)
		took, err := c.waitConverged(c.nodes, time.Minute)
		if err != nil {
			t.Fatalf("after restarting %s: %v", nd.name, err)
		}
		r.add("rolling: %s exited %d %v after SIGTERM, answered PING %v after docker start, the 3 agreed %v later",
			nd.name, code, stopTook.Round(10*time.Millisecond), up.Round(10*time.Millisecond), took.Round(10*time.Millisecond))
	}
	n = ds.countTwice(ctx, all, c, c.nodes, r, "rolling restart")
	r.add("rolling restart: %v", n)
	r.summary("rolling restart: exits %s, %d/%d keys lost, %d unreadable, %d/%d buckets fuller",
		strings.Join(codes, ","), n.lost, len(ds.keys), n.unreadable, n.fuller, nBuckets)
	if n.lost != 0 || n.unreadable != 0 || n.fuller != 0 || n.bucketErrs != 0 {
		t.Errorf("after a rolling restart: %v (first lost %q, first fuller %q, last error %v); want none lost, unreadable or fuller",
			n, n.firstLost, n.firstFuller, n.lastErr)
	}

	finishLoad(t, l, r)
}

// TestPartition cuts one node of three off the others under continuous
// load and heals the partition (see partition).
func TestPartition(t *testing.T) {
	c := startCluster(t)
	r := &report{t: t, name: "TestPartition"}
	defer r.print()
	ctx := context.Background()
	all := c.clusterClient(c.nodes...)
	defer all.Close()
	ds := newDataset("p", nKeys, 0)
	if failed, err := ds.write(ctx, all); failed > 0 {
		t.Fatalf("writing %d keys to a healthy cluster: %d failed: %v", nKeys, failed, err)
	}
	l := startLoad(c.clusterClient(c.nodes...), "setup")
	t.Cleanup(l.finish)
	time.Sleep(time.Second)
	l.setPhase("partition")
	partition(t, c, ds, r)
	finishLoad(t, l, r)
}

// finishLoad stops the load a little after the last fault and reports it.
func finishLoad(t *testing.T, l *load, r *report) {
	ctx := context.Background()
	l.setPhase("after")
	time.Sleep(2 * time.Second)
	l.finish()
	lines, worst, errs := l.report()
	for _, s := range lines {
		r.add("%s", s)
	}
	lost, unreadable, first := l.lostAcks(ctx)
	r.add("load: %d acknowledged SETs lost (first: %s), %d keys unreadable at the end", lost, first, unreadable)
	r.summary("load: %d errors, %d acknowledged SETs lost, longest slot unavailability %v", errs, lost, worst.Round(10*time.Millisecond))
	if lost != 0 || unreadable != 0 {
		t.Errorf("the load's acknowledged SETs: %d lost (first %s), %d unreadable; want none", lost, first, unreadable)
	}
}

// partition cuts the last node off the peer network (clients still reach
// both sides), writes on both sides, heals, and checks the policy: the
// minority refuses writes with CLUSTERDOWN and serves reads of the slots it
// owned; the majority declares it dead, promotes replicas and accepts
// writes; the healed cluster converges on its own and every acknowledged
// write is readable.
func partition(t *testing.T, c *cluster, ds *dataset, r *report) {
	ctx := context.Background()
	m := c.nodes[2]
	majority := c.others(m)
	owner, _, _, err := c.owners(c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	var mine []string // data set keys whose slot the minority node owns
	for _, k := range ds.keys {
		if owner[keySlot(k)] == m.name && len(mine) < 500 {
			mine = append(mine, k)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("%s owns none of the data set's slots", m.name)
	}

	// Each side's writers record every result with its time.
	type result struct {
		at    time.Duration
		write bool
		ok    bool
		class string
	}
	var (
		mu       sync.Mutex
		minority []result
		major    []result
		acked    = map[string]string{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup

	mustDocker(t, "network", "disconnect", c.peerNet, m.container)
	t0 := time.Now()
	healed := false
	defer func() {
		if !healed {
			_, _ = docker(context.Background(), "network", "connect", "--ip", m.peerIP, c.peerNet, m.container)
		}
	}()

	wg.Add(2)
	go func() { // the minority: writes to slots it owned, reads of keys it owned
		defer wg.Done()
		cl := c.client(m)
		defer cl.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := ""
			for j := i; key == ""; j++ {
				if k := fmt.Sprintf("pmin:%d:%d", i, j); owner[keySlot(k)] == m.name {
					key = k
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			werr := cl.Set(wctx, key, key, 0).Err()
			cancel()
			rk := mine[i%len(mine)]
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			v, rerr := cl.Get(rctx, rk).Result()
			cancel()
			if rerr == redis.Nil {
				rerr = fmt.Errorf("MISSING %s", rk)
			} else if rerr == nil && v != ds.values[rk] {
				rerr = fmt.Errorf("WRONGVALUE %s = %q", rk, v)
			}
			at := time.Since(t0)
			mu.Lock()
			minority = append(minority, result{at, true, werr == nil, classOf(werr)}, result{at, false, rerr == nil, classOf(rerr)})
			if werr == nil {
				acked[key] = key
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // the majority: plain clients of both its nodes, keys across all slots
		defer wg.Done()
		cls := []*redis.Client{c.client(majority[0]), c.client(majority[1])}
		defer cls[0].Close()
		defer cls[1].Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("pmaj:%d", i)
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := cls[i%2].Set(cctx, key, key, 0).Err()
			cancel()
			mu.Lock()
			major = append(major, result{time.Since(t0), true, err == nil, classOf(err)})
			if err == nil {
				acked[key] = key
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// The majority declares the minority node dead when no slot's primary
	// is that node any more in its table.
	var dead time.Duration
	for dead == 0 && time.Since(t0) < 40*time.Second {
		if o, _, _, err := c.owners(majority[0]); err == nil && !slices.Contains(o, m.name) {
			dead = time.Since(t0)
		}
		time.Sleep(100 * time.Millisecond)
	}
	hold := 40 * time.Second
	if dead > 0 {
		hold = dead + 10*time.Second
	}
	time.Sleep(time.Until(t0.Add(hold)))
	mInfo, _ := c.clusterInfo(m)
	close(stop)
	wg.Wait()

	mustDocker(t, "network", "connect", "--ip", m.peerIP, c.peerNet, m.container)
	healed = true
	healAt := time.Now()
	converge, cerr := c.waitConverged(c.nodes, 90*time.Second)

	// Steady state: from 2 s after the majority's table dropped the node.
	steady := dead + 2*time.Second
	type tally struct{ n, ok, clusterdown, other, okSteady, errSteady, nSteady int }
	count := func(rs []result, write bool) (t tally, others map[string]int) {
		others = map[string]int{}
		for _, x := range rs {
			if x.write != write {
				continue
			}
			t.n++
			switch {
			case x.ok:
				t.ok++
			case strings.HasPrefix(x.class, "CLUSTERDOWN"):
				t.clusterdown++
			default:
				t.other++
				others[x.class]++
			}
			if dead > 0 && x.at >= steady {
				t.nSteady++
				if x.ok {
					t.okSteady++
				} else if !strings.HasPrefix(x.class, "CLUSTERDOWN") || !write {
					t.errSteady++
				}
			}
		}
		return
	}
	mu.Lock()
	mw, mwOther := count(minority, true)
	mr, mrOther := count(minority, false)
	jw, jwOther := count(major, true)
	var majLastErr time.Duration
	for _, x := range major {
		if !x.ok {
			majLastErr = x.at
		}
	}
	var firstDown time.Duration = -1
	for _, x := range minority {
		if x.write && strings.HasPrefix(x.class, "CLUSTERDOWN") {
			firstDown = x.at
			break
		}
	}
	ackedCopy := make(map[string]string, len(acked))
	for k, v := range acked {
		ackedCopy[k] = v
	}
	mu.Unlock()

	firstDownS := "never"
	if firstDown >= 0 {
		firstDownS = "after " + firstDown.Round(10*time.Millisecond).String()
	}
	if dead == 0 {
		t.Errorf("partition: the majority still gave %s slots 40 s after the partition", m.name)
	}
	r.add("partition: %s cut off from the peer network; the majority's table dropped it after %v; its own CLUSTER INFO then said state %s, quorum %s",
		m.name, dead.Round(10*time.Millisecond), mInfo["cluster_state"], mInfo["cluster_quorum"])
	r.add("partition, minority writes: %d sent, %d OK (%d of them from %v on), %d CLUSTERDOWN (first %s), %d other errors %v",
		mw.n, mw.ok, mw.okSteady, steady.Round(10*time.Millisecond), mw.clusterdown, firstDownS, mw.other, mwOther)
	r.add("partition, minority reads of keys it owned: %d sent, %d served, %d failed %v (from %v on: %d of %d failed)",
		mr.n, mr.ok, mr.n-mr.ok, mrOther, steady.Round(10*time.Millisecond), mr.errSteady, mr.nSteady)
	r.add("partition, majority writes: %d sent, %d OK, %d CLUSTERDOWN, %d other errors %v; last error %v after the cut (from %v on: %d of %d failed)",
		jw.n, jw.ok, jw.clusterdown, jw.other, jwOther, majLastErr.Round(10*time.Millisecond), steady.Round(10*time.Millisecond), jw.nSteady-jw.okSteady, jw.nSteady)
	if dead > 0 {
		if mw.clusterdown == 0 {
			t.Errorf("partition: the minority node never refused a write with CLUSTERDOWN")
		}
		if mw.okSteady != 0 || mw.errSteady != 0 {
			t.Errorf("partition: from %v on the minority node acknowledged %d writes and failed %d with another error than CLUSTERDOWN; want every write refused with CLUSTERDOWN", steady, mw.okSteady, mw.errSteady)
		}
		if mr.errSteady != 0 {
			t.Errorf("partition: from %v on the minority node failed %d of %d reads of keys it owned; want all served", steady, mr.errSteady, mr.nSteady)
		}
		if jw.nSteady-jw.okSteady != 0 {
			t.Errorf("partition: from %v on the majority failed %d of %d writes; want none", steady, jw.nSteady-jw.okSteady, jw.nSteady)
		}
	}
	if cerr != nil {
		t.Fatalf("after healing the partition: %v", cerr)
	}
	r.add("heal: docker network connect, and the 3 agreed on a table %v later with no other action", converge.Round(10*time.Millisecond))

	// Nothing acknowledged on either side is lost.
	all := c.clusterClient(c.nodes...)
	defer all.Close()
	heal := &dataset{values: ackedCopy}
	for k := range ackedCopy {
		heal.keys = append(heal.keys, k)
	}
	n := heal.countTwice(ctx, all, c, c.nodes, r, "heal, acknowledged partition writes")
	d := ds.countTwice(ctx, all, c, c.nodes, r, "heal, data set")
	r.add("heal: acknowledged partition writes %v; data set %v (%v after the heal)", n, d, time.Since(healAt).Round(10*time.Millisecond))
	r.summary("partition: dead after %v, minority writes %d OK/%d CLUSTERDOWN/%d other, minority reads %d/%d served, majority write errors after failover %d, healed in %v, acknowledged lost %d/%d, data set lost %d",
		dead.Round(100*time.Millisecond), mw.ok, mw.clusterdown, mw.other, mr.ok, mr.n, jw.nSteady-jw.okSteady, converge.Round(100*time.Millisecond), n.lost, len(heal.keys), d.lost)
	if n.lost != 0 || n.unreadable != 0 {
		t.Errorf("after the partition healed: %d of %d acknowledged writes lost, %d unreadable (first lost %q, last error %v)", n.lost, len(heal.keys), n.unreadable, n.firstLost, n.lastErr)
	}
	if d.lost != 0 || d.unreadable != 0 || d.fuller != 0 {
		t.Errorf("after the partition healed, the data set: %v (first lost %q); want nothing lost", d, d.firstLost)
	}
}

func classOf(err error) string {
	if err == nil {
		return ""
	}
	return errClass(err)
}

// countTwice counts through cc, and when something is missing counts again
// 5 s later through a new ClusterClient and reports that too, to tell data
// missing for a while (still being fed) or a stale client from data lost. It
// returns the first count: a reader saw that.
func (d *dataset) countTwice(ctx context.Context, cc *redis.ClusterClient, c *cluster, nodes []*node, r *report, what string) counts {
	n := d.count(ctx, cc)
	if n.lost+n.fuller+n.unreadable+n.bucketErrs > 0 {
		time.Sleep(5 * time.Second)
		fresh := c.clusterClient(nodes...)
		defer fresh.Close()
		r.add("%s: recounted 5 s later with a new client: %v", what, d.count(ctx, fresh))
	}
	return n
}
