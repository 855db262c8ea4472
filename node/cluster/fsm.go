package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
	"github.com/sluicedb/sluice/internal/varbin"
	"github.com/sluicedb/sluice/ring"
)

// agreed is the state raft agrees on: the members and the slot table. It is
// immutable; the FSM swaps in a new one per entry.
//
// Every owner and replica in the table is a member, because one entry
// carries both: the leader drops a member only in the entry whose table no
// longer names it.
type agreed struct {
	members []record // sorted by ID
	table   *ring.Table
	// target, when set, is the table the leader is moving to: plan names
	// the move, and the table switches to target once every member of
	// table has handed its slots over (see handoff.go).
	target *ring.Table
	plan   uint64
}

// record is an agreed member. Its State is Alive, Dead (failed, kept so the
// others keep trying to reach it until Timing.Reap) or Left (leaving: out of
// the table, still reachable while it finishes).
type record struct {
	ID          string
	GossipAddr  string
	ClusterAddr string
	Meta        Meta
	State       MemberState
	// Boot identifies the member's process (see nodeMeta.Boot): a member
	// that comes back with another Boot lost its data.
	Boot uint64
}

func (a *agreed) find(id string) (record, bool) {
	if a == nil {
		return record{}, false
	}
	i, ok := slices.BinarySearchFunc(a.members, id, func(r record, id string) int { return strings.Compare(r.ID, id) })
	if !ok {
		return record{}, false
	}
	return a.members[i], true
}

// Raft log entries are one opcode and its payload. Issue 8 adds opcodes for
// what must be agreed about moving slots (hand-off progress, promotions).
const (
	// opState replaces the agreed state: encodeState's bytes.
	opState byte = 1
)

// stateVersion leads every encoded state, for changes of the layout.
// Version 1 (no boots, no target) is still read, from old data dirs.
const stateVersion = 2

// encodeState lays out a state as: version, uvarint member count, per
// member five uvarint-prefixed strings (ID, gossip, cluster, RESP and
// FlatBuffers addresses), a state byte and a uvarint boot, then the table's
// and the target's MarshalBinary bytes, each uvarint-prefixed (length 0 for
// none), and the uvarint plan.
func encodeState(b []byte, a *agreed) ([]byte, error) {
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(len(a.members)))
	for _, m := range a.members {
		for _, s := range [...]string{m.ID, m.GossipAddr, m.ClusterAddr, m.Meta.RESPAddr, m.Meta.FBAddr} {
			b = appendString(b, s)
		}
		b = append(b, byte(m.State))
		b = binary.AppendUvarint(b, m.Boot)
	}
	for _, t := range [...]*ring.Table{a.table, a.target} {
		if t == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		tb, err := t.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(tb)))
		b = append(b, tb...)
	}
	return binary.AppendUvarint(b, a.plan), nil
}

var errBadState = errors.New("cluster: malformed agreed state")

func decodeState(b []byte) (*agreed, error) {
	d := varbin.Reader{B: b}
	v := d.Byte()
	if v != 1 && v != stateVersion {
		return nil, fmt.Errorf("cluster: agreed state version %d, want %d", v, stateVersion)
	}
	n := d.Uvarint()
	if n > uint64(len(b)) {
		return nil, errBadState
	}
	a := &agreed{members: make([]record, 0, n)}
	for range n {
		var m record
		m.ID, m.GossipAddr, m.ClusterAddr = d.String(), d.String(), d.String()
		m.Meta.RESPAddr, m.Meta.FBAddr = d.String(), d.String()
		m.State = MemberState(d.Byte())
		if v >= 2 {
			m.Boot = d.Uvarint()
		}
		a.members = append(a.members, m)
	}
	tables := []**ring.Table{&a.table}
	if v >= 2 {
		tables = append(tables, &a.target)
	}
	for _, t := range tables {
		tb := d.Bytes()
		if d.Err {
			return nil, errBadState
		}
		if len(tb) > 0 {
			*t = new(ring.Table)
			if err := (*t).UnmarshalBinary(tb); err != nil {
				return nil, err
			}
		}
	}
	if v >= 2 {
		a.plan = d.Uvarint()
	}
	if d.Err {
		return nil, errBadState
	}
	return a, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// fsm is raft's state machine: it applies opState entries to the Cluster.
type fsm struct {
	c *Cluster
}

func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	switch l.Data[0] {
	case opState:
		a, err := decodeState(l.Data[1:])
		if err != nil {
			f.c.log.Error("cannot apply agreed state", "index", l.Index, "err", err)
			return err
		}
		f.c.setAgreed(a)
		return nil
	}
	err := fmt.Errorf("cluster: unknown raft entry type %d", l.Data[0])
	f.c.log.Error("cannot apply raft entry", "index", l.Index, "err", err)
	return err
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	a := f.c.agreed.Load()
	if a == nil {
		a = &agreed{}
	}
	b, err := encodeState(nil, a)
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	a, err := decodeState(b)
	if err != nil {
		return err
	}
	f.c.setAgreed(a)
	return nil
}

// snapshot is an encoded state.
type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}

// discardFSM stands in for the FSM when raft reads a stored configuration
// before starting.
type discardFSM struct{}

func (discardFSM) Apply(*raft.Log) any                 { return nil }
func (discardFSM) Snapshot() (raft.FSMSnapshot, error) { return snapshot(nil), nil }
func (discardFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }
