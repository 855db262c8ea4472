package resp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
)

// fromConn is a server-side connection that reports another peer address,
// to play clients of other hosts without leaving this one.
type fromConn struct {
	net.Conn
	remote net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.remote }

// dialFrom connects a client whose address the server sees as remote.
func (l *pipeListener) dialFrom(remote string) (net.Conn, *bufio.Reader) {
	c, s := net.Pipe()
	l.conns <- fromConn{s, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(remote))}
	return c, bufio.NewReader(c)
}

// pipeDo sends an inline request and returns the reply, or "EOF" when the
// server closed the connection instead.
func pipeDo(t *testing.T, c net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	go io.WriteString(c, req+"\r\n")
	got, err := readReply(r)
	if err == io.EOF {
		return "EOF"
	}
	if err != nil {
		t.Fatalf("%s: %v", req, err)
	}
	return got
}

const denied = "-" + errProtectedMode + "\r\n"

// TestProtectedMode checks who protected mode lets in: clients of this
// host always; clients of other hosts only while a password is set, which
// is judged as each connects, so CONFIG SET requirepass applies to the
// next connection.
func TestProtectedMode(t *testing.T) {
	l, _, stop := startPipeServer(t, node.Config{}, Config{})
	defer stop()
	remote := func(addr string) (net.Conn, *bufio.Reader) {
		c, r := l.dialFrom(addr)
		t.Cleanup(func() { c.Close() })
		return c, r
	}

	for _, addr := range []string{"203.0.113.7:40000", "192.0.2.2:6379", "[2001:db8::1]:1234", "[::ffff:10.0.0.1]:5"} {
		c, r := remote(addr)
		got, err := readReply(r) // the server speaks first
		if got != denied {
			t.Fatalf("%s: got %.60q, %v; want the protected-mode error", addr, got, err)
		}
		if _, err := readReply(r); err != io.EOF {
			t.Fatalf("%s: the connection was left open: %v", addr, err)
		}
		c.Close()
	}
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.2:2", "[::1]:3", "[::ffff:127.0.0.1]:4"} {
		c, r := remote(addr)
		if got := pipeDo(t, c, r, "PING"); got != "+PONG\r\n" {
			t.Fatalf("%s: %q", addr, got)
		}
	}

	local, lr := l.dial()
	defer local.Close()
	if got := pipeDo(t, local, lr, "CONFIG SET requirepass secret"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	c, r := remote("203.0.113.7:40001")
	if got := pipeDo(t, c, r, "PING"); got != "-NOAUTH Authentication required.\r\n" {
		t.Fatalf("PING from another host with a password set: %q", got)
	}
	if got := pipeDo(t, c, r, "AUTH secret"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := pipeDo(t, local, lr, "AUTH secret"); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := pipeDo(t, local, lr, "CONFIG SET requirepass \"\""); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	if got := pipeDo(t, c, r, "PING"); got != "+PONG\r\n" {
		t.Fatalf("a client let in while a password was set: %q", got)
	}
	if _, r := remote("203.0.113.7:40002"); !bytes.HasPrefix(must(readReply(r)), []byte("-DENIED")) {
		t.Fatal("a client of another host was let in after the password was removed")
	}
}

func must(s string, err error) []byte {
	if err != nil {
		return []byte(err.Error())
	}
	return []byte(s)
}

// TestProtectedModeOff checks DisableProtectedMode lets every client in.
func TestProtectedModeOff(t *testing.T) {
	l, _, stop := startPipeServer(t, node.Config{}, Config{DisableProtectedMode: true})
	defer stop()
	c, r := l.dialFrom("203.0.113.7:40000")
	defer c.Close()
	if got := pipeDo(t, c, r, "PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
}

// ownAddress returns a non-loopback IPv4 address of this machine.
func ownAddress(t *testing.T) netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			return p.Addr()
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address to test protected mode from")
	return netip.Addr{}
}

// TestProtectedModeNetwork listens on all interfaces and connects from
// this machine's own non-loopback address, which the server sees as a
// client of another host: refused, also over TLS (after the handshake, as
// Redis does), while loopback clients are served.
func TestProtectedModeNetwork(t *testing.T) {
	own := ownAddress(t)
	ts := newTLSSetup(t)
	n, err := node.New(node.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New(n, Config{Addr: "0.0.0.0:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	secure, err := New(n, Config{Addr: "0.0.0.0:0", Logger: slog.New(slog.DiscardHandler),
		TLSCertFile: ts.certFile, TLSKeyFile: ts.keyFile})
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(plain)
	n.Attach(secure)
	n.Start()
	defer n.Close(context.Background())
	port := func(s *Server) uint16 { return netip.MustParseAddrPort(s.Addr()).Port() }

	for _, tt := range []struct {
		name string
		dial func(addr string) (net.Conn, error)
		port uint16
	}{
		{"plaintext", func(a string) (net.Conn, error) { return net.DialTimeout("tcp", a, 5*time.Second) }, port(plain)},
		{"TLS", func(a string) (net.Conn, error) {
			return (&tls.Dialer{Config: ts.clientConfig(false)}).Dial("tcp", a)
		}, port(secure)},
	} {
		for _, from := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), own} {
			nc, err := tt.dial(netip.AddrPortFrom(from, tt.port).String())
			if err != nil {
				t.Fatalf("%s from %s: %v", tt.name, from, err)
			}
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(nc, "PING\r\n")
			got, err := readReply(bufio.NewReader(nc))
			want := "+PONG\r\n"
			if from == own {
				want = denied
			}
			if got != want {
				t.Errorf("%s from %s: got %.60q, %v; want %.60q", tt.name, from, got, err, want)
			}
			nc.Close()
		}
	}
}
