package fb

import (
	"net"
	"net/netip"
)

// errProtectedMode refuses a client of another host in protected mode.
const errProtectedMode = "DENIED Sluice is running in protected mode: no password is set for the " +
	"default user, so the FlatBuffers port only serves clients on the loopback interface. " +
	"Set a password (requirepass) or turn protected mode off (--protected-mode no)."

// isLocal reports whether a client's address is on this host's loopback
// interface, where protected mode lets it in: all of 127.0.0.0/8 and ::1,
// IPv4 as a dual-stack listener reports it (::ffff:127.0.0.1), and any
// address that is not IP (a Unix socket), as the RESP port decides.
func isLocal(a net.Addr) bool {
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
