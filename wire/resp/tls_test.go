package resp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicedb/sluice/node"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate signed by the CA and its key, as PEM: for a
// server on this host (loopback and localhost), or a client.
func (ca *testCA) issue(t testing.TB, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// tlsSetup is a CA, a server certificate and a client certificate, written
// to a temporary directory.
type tlsSetup struct {
	dir                                 string
	ca                                  *testCA
	caFile, certFile, keyFile           string // the server's
	clientCertFile, clientKeyFile       string
	clientPair                          tls.Certificate
	roots                               *x509.CertPool
	serverCN                            string
	otherClientPair                     tls.Certificate // signed by another CA
	otherClientCertFile, otherClientKey string
}

func newTLSSetup(t testing.TB) *tlsSetup {
	t.Helper()
	dir := t.TempDir()
	ts := &tlsSetup{dir: dir, ca: newTestCA(t, "sluice test CA")}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ts.caFile = write("ca.pem", ts.ca.pem)
	ts.rotate(t, "server-1")
	cert, key := ts.ca.issue(t, "client", false)
	ts.clientCertFile, ts.clientKeyFile = write("client.pem", cert), write("client.key", key)
	var err error
	if ts.clientPair, err = tls.X509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	cert, key = newTestCA(t, "another CA").issue(t, "stranger", false)
	ts.otherClientCertFile, ts.otherClientKey = write("other.pem", cert), write("other.key", key)
	if ts.otherClientPair, err = tls.X509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	ts.roots = x509.NewCertPool()
	ts.roots.AddCert(ts.ca.cert)
	return ts
}

// rotate writes a new server certificate and key named cn, replacing the
// files atomically as a certificate manager does.
func (ts *tlsSetup) rotate(t testing.TB, cn string) {
	t.Helper()
	cert, key := ts.ca.issue(t, cn, true)
	ts.certFile, ts.keyFile = filepath.Join(ts.dir, "server.pem"), filepath.Join(ts.dir, "server.key")
	for path, data := range map[string][]byte{ts.certFile: cert, ts.keyFile: key} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	ts.serverCN = cn
}

// clientConfig is a client's TLS configuration trusting the test CA, with
// the client certificate when withCert is set.
func (ts *tlsSetup) clientConfig(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: ts.roots, ServerName: "localhost"}
	if withCert {
		cfg.Certificates = []tls.Certificate{ts.clientPair}
	}
	return cfg
}

// startTLSNode runs a node with a TLS RESP server on a free loopback port;
// withCA turns on client-certificate verification.
func startTLSNode(t testing.TB, ts *tlsSetup, withCA bool, cfg node.Config) (*node.Node, *Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := Config{Addr: "127.0.0.1:0", Logger: cfg.Logger, TLSCertFile: ts.certFile, TLSKeyFile: ts.keyFile}
	if withCA {
		rc.TLSCAFile = ts.caFile
	}
	s, err := New(n, rc)
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(s)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("closing the node: %v", err)
		}
	})
	return n, s
}

// dialTLS connects a raw RESP client over TLS.
func dialTLS(t testing.TB, s *Server, cfg *tls.Config) *client {
	t.Helper()
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	nc, err := d.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// TestTLSGoRedis runs go-redis over TLS with a client certificate: RESP3
// (go-redis's HELLO 3), pipelining and a value larger than a TLS record.
func TestTLSGoRedis(t *testing.T) {
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, true, node.Config{})
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: ts.clientConfig(true)})
	defer rdb.Close()
	ctx := context.Background()
	big := strings.Repeat("v", 1<<20)
	if err := rdb.Set(ctx, "k", big, 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != big {
		t.Fatalf("GET: %d bytes, %v", len(got), err)
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range 1000 {
			p.Incr(ctx, "n")
		}
		return nil
	})
	if err != nil || len(cmds) != 1000 {
		t.Fatalf("pipeline: %d replies, %v", len(cmds), err)
	}
	if got, err := rdb.Get(ctx, "n").Int(); got != 1000 {
		t.Fatalf("GET n: %d, %v", got, err)
	}
}

// TestTLSRedisCli runs Debian's redis-cli, built with TLS, against the
// server: with its client certificate it gets PONG; without, nothing.
func TestTLSRedisCli(t *testing.T) {
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed: make test installs it (apt-get install redis-tools)")
	}
	if help, _ := exec.Command(bin, "--help").CombinedOutput(); !bytes.Contains(help, []byte("--tls")) {
		t.Fatal("this redis-cli was built without TLS; Debian's redis-tools has it")
	}
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, true, node.Config{})
	host, port, _ := net.SplitHostPort(s.Addr())
	cli := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		args = append([]string{"-h", host, "-p", port, "--tls", "--cacert", ts.caFile}, args...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := cli("--cert", ts.clientCertFile, "--key", ts.clientKeyFile, "PING"); out != "PONG" {
		t.Fatalf("redis-cli --tls with a client certificate: %q, %v", out, err)
	}
	if out, err := cli("--cert", ts.clientCertFile, "--key", ts.clientKeyFile, "SET", "k", "v"); out != "OK" {
		t.Fatalf("redis-cli SET: %q, %v", out, err)
	}
	if out, _ := cli("PING"); strings.Contains(out, "PONG") {
		t.Fatalf("redis-cli without a client certificate got %q", out)
	}
}

// TestTLSRefused checks what a client that does not speak TLS, or has no
// valid certificate, gets: nothing useful, and the server stays up.
func TestTLSRefused(t *testing.T) {
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, true, node.Config{})

	// Plaintext: the server sees a first record that is not TLS and closes
	// the connection; the client reads no reply.
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "PING\r\n*1\r\n$4\r\nPING\r\n")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(nc)
	if isTimeout(err) {
		t.Fatal("the plaintext client's connection was left open")
	}
	if bytes.Contains(got, []byte("PONG")) || bytes.Contains(got, []byte("ERR")) {
		t.Fatalf("a plaintext client got %q", got)
	}

	for _, tt := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", ts.clientConfig(false)},
		// Go's client would not offer a certificate the server's CAs did
		// not sign; this one insists.
		{"a certificate of another CA", &tls.Config{RootCAs: ts.roots, ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &ts.otherClientPair, nil
			}}},
	} {
		d := &tls.Dialer{Config: tt.cfg}
		nc, err := d.Dial("tcp", s.Addr())
		if err != nil {
			continue // refused in the handshake
		}
		// TLS 1.3 completes the client's side of the handshake before the
		// server has checked the client's certificate: the refusal arrives
		// with the first read.
		io.WriteString(nc, "PING\r\n")
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(nc)
		nc.Close()
		if err == nil || isTimeout(err) || len(got) > 0 {
			t.Errorf("%s: got %q, %v; want the handshake refused", tt.name, got, err)
		} else {
			t.Logf("%s: %v", tt.name, err)
		}
	}

	if got := dialTLS(t, s, ts.clientConfig(true)).do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING after refused clients: %q", got)
	}
}

// TestTLSWithoutCA checks that without a CA clients are not asked for a
// certificate.
func TestTLSWithoutCA(t *testing.T) {
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, false, node.Config{})
	c := dialTLS(t, s, ts.clientConfig(false))
	if got := c.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	if st := c.nc.(*tls.Conn).ConnectionState(); st.Version < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", st.Version)
	}
	old := &tls.Config{RootCAs: ts.roots, ServerName: "localhost", MaxVersion: tls.VersionTLS11}
	if nc, err := tls.Dial("tcp", s.Addr(), old); err == nil {
		nc.Close()
		t.Fatal("a TLS 1.1 client was accepted")
	}
}

// TestTLSSlowReaders runs the output paths over TLS, where every write goes
// through the background writer and must not time out: a client that does
// not read is dropped at the output buffer limit while another is served,
// and one that reads slowly gets every reply.
func TestTLSSlowReaders(t *testing.T) {
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, false, node.Config{Limits: node.Limits{OutputBufferLimit: 8 << 20}})
	other := dialTLS(t, s, ts.clientConfig(false))
	val := strings.Repeat("v", 1<<20)
	if got := other.do("SET", "big", val); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	greedy := dialTLS(t, s, ts.clientConfig(false))
	if got := greedy.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	var b bytes.Buffer
	for range 100 {
		encode(&b, "GET", "big")
	}
	go func() {
		for range 10 {
			greedy.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := greedy.nc.Write(b.Bytes()); err != nil {
				return
			}
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		start := time.Now()
		if got := other.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("PING took %v while a client was not reading", d)
		}
		if strings.Count(other.do("CLIENT", "LIST"), "id=") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the TLS client that does not read was not dropped")
		}
	}

	slow := dialTLS(t, s, ts.clientConfig(false))
	b.Reset()
	const n = 30 // 30 MiB of replies, over the limit, read slowly
	for range n {
		encode(&b, "GET", "big")
	}
	go slow.nc.Write(b.Bytes())
	for i := range n {
		if i%5 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if got := slow.read(); len(got) != len(bulk(val)) {
			t.Fatalf("reply %d: %d bytes", i, len(got))
		}
	}
	if got := slow.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
}

// TestTLSMaxClients checks that a TLS client over maxclients is dropped
// before its handshake, as Redis does, and that QUIT over TLS delivers its
// reply before the connection closes.
func TestTLSMaxClients(t *testing.T) {
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, false, node.Config{Limits: node.Limits{MaxClients: 1}})
	a := dialTLS(t, s, ts.clientConfig(false))
	if got := a.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	d := &tls.Dialer{Config: ts.clientConfig(false)}
	if nc, err := d.Dial("tcp", s.Addr()); err == nil {
		nc.Close()
		t.Fatal("the handshake of a client over maxclients succeeded")
	}
	if got := a.do("QUIT"); got != "+OK\r\n" {
		t.Fatalf("QUIT: %q", got)
	}
	a.expectEOF(5 * time.Second)
}

// TestTLSReload rotates the server's certificate: ReloadTLS takes it at
// once, a change of the files is noticed by itself within a second or so,
// and files that do not load leave the previous certificate in use.
func TestTLSReload(t *testing.T) {
	ts := newTLSSetup(t)
	_, s := startTLSNode(t, ts, false, node.Config{})
	served := func() string {
		t.Helper()
		c := dialTLS(t, s, ts.clientConfig(false))
		if got := c.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
		defer c.nc.Close()
		return c.nc.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "server-1" {
		t.Fatalf("certificate %q, want server-1", got)
	}
	established := dialTLS(t, s, ts.clientConfig(false))

	ts.rotate(t, "server-2")
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "server-2" {
		t.Fatalf("after ReloadTLS: certificate %q, want server-2", got)
	}
	if got := established.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("a connection made before the rotation: %q", got)
	}

	ts.rotate(t, "server-3")
	for deadline := time.Now().Add(10 * time.Second); served() != "server-3"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rotated files were not noticed")
		}
	}

	// A key that does not match the certificate: refused, and the server
	// goes on with the certificate it has.
	_, otherKey := ts.ca.issue(t, "mismatch", true)
	if err := os.WriteFile(ts.keyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS accepted a key that does not match the certificate")
	}
	time.Sleep(tlsCheckInterval + 100*time.Millisecond)
	for range 3 {
		if got := served(); got != "server-3" {
			t.Fatalf("after a failed rotation: certificate %q, want server-3", got)
		}
	}
}

func TestTLSConfigErrors(t *testing.T) {
	ts := newTLSSetup(t)
	n, err := node.New(node.Config{})
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(ts.dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"a certificate without a key", Config{TLSCertFile: ts.certFile}},
		{"a CA alone", Config{TLSCAFile: ts.caFile}},
		{"a missing file", Config{TLSCertFile: ts.certFile, TLSKeyFile: filepath.Join(ts.dir, "missing")}},
		{"a key that does not match", Config{TLSCertFile: ts.certFile, TLSKeyFile: ts.clientKeyFile}},
		{"a CA file without certificates", Config{TLSCertFile: ts.certFile, TLSKeyFile: ts.keyFile, TLSCAFile: garbage}},
	} {
		tt.cfg.Addr = "127.0.0.1:0"
		if s, err := New(n, tt.cfg); err == nil {
			s.Close(context.Background())
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}
