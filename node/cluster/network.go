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
	t, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{bindAddr},
		BindPort:  port,
		Logger:    logger,
	})
	if err != nil {
		// Not a nil *NetTransport in a non-nil interface, which Close
		// would then shut down.
		return nil, err
	}
	return t, nil
}
