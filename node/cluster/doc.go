// Package cluster is a Sluice node's control plane and peer transport: who
// the members are (hashicorp/memberlist gossip), which slot table is in force
// (hashicorp/raft agreement on the members and a ring.Table with its epoch),
// and how a command reaches the node that owns it (Forward, over a pooled,
// pipelined connection on the cluster port).
//
// The package knows nothing of commands: the node implements Handler to run
// what peers forward, and reads Table to route. It never imports node.
//
// # Membership and agreement
//
// Every node gossips its cluster address and client addresses (Meta) in
// memberlist's node metadata. The raft leader turns what gossip sees into
// the agreed state, on every gossip event and every Timing.Reconcile: the
// members, and a table computed by ring.Compute over the alive ones with the
// table in force as prev (a join or leave of one of N nodes moves about 1/N
// of the slots). Members and table go in one raft entry, so every node a
// table names is an agreed member with an address. Suspects keep their
// slots; dead members leave the table at once but stay agreed (as Dead) for
// Timing.Reap, so every node keeps trying to reach them: a healed
// partition or a restarted node rejoins with no action. Without quorum,
// nothing is applied: the last table stays in force and Status.HasQuorum is
// false.
//
// The leader also keeps raft's configuration: 3 voters, 5 from 7 members,
// always odd, the rest non-voters. New members join as non-voters and are
// promoted when voters are short. A dead voter is removed only once a
// non-voter has been promoted in its place, so it never takes a majority
// with it and a node that merely restarts returns as a voter. Members that
// leave (Leave) are taken out of the table first, then out of raft, while
// they still answer; a leaving leader hands leadership on first.
//
// A node with no Join and no raft state bootstraps a cluster of one and has
// its table within milliseconds. With DataDir, raft's log and snapshots
// survive restarts (raft-boltdb and raft's file snapshots), with the node's
// ID and the gossip addresses of the other members, so a restarted node
// comes back as itself even with no Join.
//
// # The cluster port
//
// One TCP port carries several protocols; a dialer's first byte chooses:
// 'r' for raft's NetworkTransport, 'p' for the peer protocol. Before that
// byte, on every connection, in the one dialer (dialProto) and the one
// accept path (route) that raft and Forward share, so neither can skip
// them, come up to two layers. TLS 1.3 (tls.go), when the node has
// certificates (a Network from WithTLS: mutual TLS against the cluster's
// CA) or Config.ClusterSecret (a key derived from the secret, pinned): it
// encrypts and authenticates everything after it. Then, with
// Config.ClusterSecret, a mutual HMAC-SHA256 handshake (auth.go) inside
// it. A connection that fails either, or takes longer than a few seconds,
// is closed and logged. With neither certificates nor a secret the port is
// plaintext and anyone who reaches it is a peer, which suits private
// networks only.
//
// Gossip is encrypted with a keyring (gossipKeyring): GossipKey, or the
// secret's derived key, encrypts; GossipKeys are accepted too, so a key
// rotates in three rolling steps (install the new key everywhere, make it
// primary everywhere, remove the old one). Certificates do not key gossip:
// a cluster with certificates needs a GossipKey too, or anyone who reaches
// the gossip port joins the membership. See docs/cluster-security.md.
//
// The peer protocol is frames in both directions,
//
//	type:1 | id:4 | length:4 | payload
//
// (big-endian), many in flight per connection, answered by id. Forward sends
// msgCommand (the arguments, uvarint-prefixed); the owner runs it through
// Handler.ServePeer with a ReplyWriter that records each call as an opcode
// (see reply.go), and the sender replays the opcodes into its client's
// ReplyWriter, so the reply crosses the network without knowing RESP2 from
// RESP3. The answer is msgReply, msgNotOwner or msgFail. Message types from
// 16 up are free for replication and hand-off streams.
//
// # Timing
//
// With production timing (Timing's zero value) a killed node is declared
// dead by memberlist after its probe and suspicion timeouts, about five
// seconds in a small cluster, and the leader agrees a table without it at
// once; losing the leader adds raft's election (one to two seconds).
// FastTiming brings both under a second for tests.
//
// # Seams
//
// As in hashicorp/raft, every piece of I/O is behind a small interface with
// an in-memory twin beside the real one: Network carries the cluster port
// (listener and dialer) and memberlist's transport. TCPNetwork is the host's
// sockets; MemNetwork runs many nodes in one process, with partitions and
// kills, for fast deterministic tests.
package cluster
