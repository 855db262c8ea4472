package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Files under Config.DataDir.
const (
	idFile    = "node-id"   // the node's ID, so a restart is the same node
	peersFile = "peers"     // gossip addresses of the other members, to rejoin
	raftFile  = "raft.db"   // raft's log and stable store (bbolt)
	snapDir   = "snapshots" // raft's snapshots
	keepSnaps = 2
)

// stores is raft's persistence: in memory, or under a data dir.
type stores struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	closer io.Closer // the bolt file, nil in memory
}

func openStores(dir string, logw io.Writer) (stores, error) {
	if dir == "" {
		mem := raft.NewInmemStore()
		return stores{logs: mem, stable: mem, snaps: raft.NewInmemSnapshotStore()}, nil
	}
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, raftFile))
	if err != nil {
		return stores{}, fmt.Errorf("cluster: open raft store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, snapDir), keepSnaps, logw)
	if err != nil {
		bolt.Close()
		return stores{}, fmt.Errorf("cluster: open snapshot store: %w", err)
	}
	// The log cache saves raft re-reading recent entries from disk when it
	// replicates them.
	logs, err := raft.NewLogCache(128, bolt)
	if err != nil {
		bolt.Close()
		return stores{}, err
	}
	return stores{logs: logs, stable: bolt, snaps: snaps, closer: bolt}, nil
}

// resolveID returns the node's ID: want, or the one stored in dir, or a new
// random one (stored in dir). want differing from the stored ID is an
// error, since the raft state in dir belongs to that node.
func resolveID(want, dir string) (string, error) {
	if dir == "" {
		if want == "" {
			return randomID(), nil
		}
		return want, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cluster: data dir: %w", err)
	}
	path := filepath.Join(dir, idFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		stored := strings.TrimSpace(string(b))
		if want != "" && want != stored {
			return "", fmt.Errorf("cluster: data dir %s belongs to node %q, not %q", dir, stored, want)
		}
		return stored, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("cluster: data dir: %w", err)
	}
	id := want
	if id == "" {
		id = randomID()
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("cluster: data dir: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("cluster: data dir: %w", err)
	}
	return id, nil
}

// randomID is 40 hex digits, the form of a Redis Cluster node ID.
func randomID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writePeers records the gossip addresses of the other agreed members in
// dir, one per line, so that a node restarted without Join finds its
// cluster again even if everyone else moved on (they stop looking for a
// member that left).
func writePeers(dir string, addrs []string) error {
	path := filepath.Join(dir, peersFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readPeers returns what writePeers wrote, nil if nothing.
func readPeers(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, peersFile))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}
