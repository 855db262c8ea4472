package cluster

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/sluicedb/sluice/ring"
)

// Cluster is this node's membership in a cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	table atomic.Pointer[ring.Table]
}

func start(ctx context.Context, cfg Config, h Handler) (*Cluster, error) {
	return nil, errors.New("cluster: not implemented yet")
}

func (c *Cluster) self() Member                    { return Member{} }
func (c *Cluster) onTable(fn func(*ring.Table))    {}
func (c *Cluster) members() []Member               { return nil }
func (c *Cluster) member(id string) (Member, bool) { return Member{}, false }
func (c *Cluster) status() Status                  { return Status{} }
func (c *Cluster) leave(ctx context.Context) error { return nil }
func (c *Cluster) close() error                    { return nil }
func (c *Cluster) forward(ctx context.Context, nodeID string, args [][]byte, w ReplyWriter) error {
	return ErrNoTable
}
