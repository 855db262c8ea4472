//go:build dockertest

package docker

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAsyncKill is TestKillAndRestart's kill with --replication async: the
// primary acknowledges before its replica has the write, so a SIGKILL while
// writes stream in loses what was still in flight. After 10,000 keys,
// writing goes on while docker kill runs, and only acknowledged writes
// count. The loss is reported, not asserted: measuring it is the point.
func TestAsyncKill(t *testing.T) {
	image := sluiceImage(t)
	help := mustDocker(t, "run", "--rm", image, "--help")
	if !strings.Contains(help, "--replication\n") {
		t.Fatalf("%s has no --replication flag (sluice --help), so asynchronous replication cannot be measured; it comes with issue 8's replication", image)
	}
	c := startCluster(t, "--replication", "async")
	r := &report{t: t, name: "TestAsyncKill"}
	defer r.print()
	ctx := context.Background()
	all := c.clusterClient(c.nodes...)
	defer all.Close()
	// Keys to spare: writing goes on until docker kill returns.
	ds := newDataset("a", 10*nKeys, nBuckets)
	if failed, err := ds.drain(ctx, all); failed > 0 {
		t.Fatalf("draining %d buckets in a healthy cluster: %d failed: %v", nBuckets, failed, err)
	}
	victim, survivors := c.nodes[1], c.others(c.nodes[1])
	during, killTook, killEnd, err := ds.writeRacingKill(ctx, all, nKeys, func() error {
		_, err := docker(context.Background(), "kill", "--signal", "KILL", victim.container)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.add("async: drained %d buckets, then wrote keys in pipelines of 100, running docker kill -s KILL %s after %d and writing on until it returned: %d writes got OK, %d of them while docker kill ran (it took %v)",
		nBuckets, victim.name, nKeys, len(ds.keys), during, killTook.Round(time.Millisecond))
	_, err = c.waitConverged(survivors, time.Minute)
	if err != nil {
		t.Fatalf("after SIGKILL of %s: %v", victim.name, err)
	}
	took := time.Since(killEnd)
	survivor := c.clusterClient(survivors...)
	defer survivor.Close()
	n := ds.countTwice(ctx, survivor, c, survivors, r, "async")
	r.add("async: the survivors served every slot within %v of docker kill returning; %v", took.Round(10*time.Millisecond), n)
	r.summary("kill with --replication async racing writes: %d of %d acknowledged keys lost (%d acknowledged while docker kill ran), %d unreadable, %d/%d buckets fuller (reported, not asserted)",
		n.lost, len(ds.keys), during, n.unreadable, n.fuller, nBuckets)
}
