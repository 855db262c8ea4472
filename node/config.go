package node

import (
	"log/slog"
	"time"

	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/store"
)

// Config is everything a node needs; the zero value is a working single node.
// Each field mirrors a flag of the sluice binary (see cmd/sluice).
type Config struct {
	// NodeName identifies the node; a random hex id when empty.
	NodeName string
	// MaxMemory is the store's memory limit in bytes; 0 = unlimited.
	MaxMemory int64
	// MaxMemoryPolicy is a Redis eviction policy name; empty = allkeys-lfu.
	MaxMemoryPolicy string
	// RequirePass, when set, is the default user's password: clients AUTH
	// before any other command.
	RequirePass string
	// ACLFile, when set, is loaded at start (users in Redis's ACL file
	// format); ACL LOAD reloads it and ACL SAVE writes it.
	ACLFile string
	// Shards is the store's shard count (power of two); 0 = 256.
	Shards int
	// ConfigFile is the path of the file the settings came from, for INFO.
	ConfigFile string

	Limits Limits

	// Cluster, when set, makes the node a member of a cluster (one of its own
	// when Join is empty): gossip, the raft-agreed slot table and routing.
	// NodeID is taken from NodeName; Meta.RESPAddr defaults to the first
	// attached server's address.
	Cluster *cluster.Config
	// Redirect says which clients get -MOVED for a slot owned elsewhere
	// rather than having the command forwarded: RedirectAuto (the default:
	// connections that showed they are cluster-aware), RedirectAlways or
	// RedirectNever.
	Redirect string
	// Replication says when a reply to a write leaves: ReplicationSync (the
	// default) once the slot's replicas applied it, ReplicationAsync at
	// once (WAIT then waits for the replicas).
	Replication string
	// ReplicationTimeout bounds how long a synchronous reply waits for the
	// replicas; past it the connection is closed with the reply unsent. 0
	// means 2s.
	ReplicationTimeout time.Duration

	// Logger receives the node's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Clock drives expiry and rate limits; the system's monotonic clock when nil.
	Clock store.Clock
}

// Limits protect the node from clients. They can be changed at run time
// (CONFIG SET) and protocol servers read them for every connection.
type Limits struct {
	// MaxClients is the most connections served at once (maxclients); 0 = 10000.
	MaxClients int
	// ProtoMaxBulkLen is the largest bulk string a client may send
	// (proto-max-bulk-len); 0 = 512 MiB.
	ProtoMaxBulkLen int64
	// MaxArgs is the most arguments one command may have; 0 = 1048576.
	MaxArgs int
	// OutputBufferLimit is how many reply bytes may wait for a client that does
	// not read before it is disconnected; 0 in Config = 64 MiB. Set to 0 at run
	// time (CONFIG SET client-output-buffer-limit 0), it means no limit.
	OutputBufferLimit int64
	// IdleTimeout closes connections idle this long (timeout); 0 = never.
	IdleTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxClients == 0 {
		l.MaxClients = 10000
	}
	if l.ProtoMaxBulkLen == 0 {
		l.ProtoMaxBulkLen = 512 << 20
	}
	if l.MaxArgs == 0 {
		l.MaxArgs = 1 << 20
	}
	if l.OutputBufferLimit == 0 {
		l.OutputBufferLimit = 64 << 20
	}
	return l
}
