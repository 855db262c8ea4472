// Package protected is protected mode, as the protocol servers apply it: a
// node whose default user has no password serves only clients on this host.
package protected

import (
	"net"
	"net/netip"

	"github.com/sluicedb/sluice/node"
)

// Refuses reports whether a server with protected mode enabled must refuse
// the client at addr: the node's default user has no password (Redis's
// condition) and the client is not on the loopback interface.
func Refuses(n *node.Node, enabled bool, addr net.Addr) bool {
	return enabled && n.DefaultUserNoPass() && !IsLocal(addr)
}

// IsLocal reports whether a client's address is on this host's loopback
// interface, where protected mode lets it in. Redis compares the address
// text with "127.0.0.1" and "::1"; this takes the whole of 127.0.0.0/8,
// which cannot come from another host either, and IPv4 addresses as a
// dual-stack listener reports them (::ffff:127.0.0.1). An address that is
// not IP (a Unix socket, an in-memory pipe) is local, as Redis treats Unix
// sockets.
func IsLocal(a net.Addr) bool {
	var ip netip.Addr
	if tcp, ok := a.(*net.TCPAddr); ok {
		ip = tcp.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	} else {
		return true
	}
	return ip.Unmap().IsLoopback()
}
