package protected

import (
	"net"
	"testing"
)

// pipeAddr is the address of an in-memory connection (net.Pipe).
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestIsLocal(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 1, 2, 3), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1}, false},
		{&net.TCPAddr{}, false}, // no address: not known to be local
		{&net.UnixAddr{Name: "/tmp/sluice.sock", Net: "unix"}, true},
		{pipeAddr{}, true},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, false},
	}
	for _, tt := range tests {
		if got := IsLocal(tt.addr); got != tt.want {
			t.Errorf("IsLocal(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
