package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority for tests, with its PEM file in dir.
type testCA struct {
	dir  string
	name string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{dir: dir, name: name, cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a member certificate and key the CA signed, valid for
// serverAuth and clientAuth unless edit changes the template, and returns
// the files with the CA's.
func (ca *testCA) issue(t testing.TB, name string, edit func(*x509.Certificate)) TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{
		CertFile: filepath.Join(ca.dir, ca.name+"-"+name+".pem"),
		KeyFile:  filepath.Join(ca.dir, ca.name+"-"+name+"-key.pem"),
		CAFile:   ca.file,
	}
	writePEM(t, f.CertFile, "CERTIFICATE", der)
	writePEM(t, f.KeyFile, "PRIVATE KEY", kder)
	return f
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// mustTLS is WithTLS that fails the test on error.
func mustTLS(t testing.TB, n Network, files TLSFiles, log *slog.Logger) Network {
	t.Helper()
	tn, err := WithTLS(n, files, log)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// recordingNetwork is a Network that keeps a copy of every byte written on
// the cluster port's connections, dialed and accepted: what an observer on
// the wire would see. Each connection's bytes are kept apart, in order, so
// that a marker written across two writes is not split by another
// connection's, and recorded before they are sent, so that whatever a peer
// has received (and answered) is in the recording.
type recordingNetwork struct {
	Network
	mu    sync.Mutex
	conns []*bytes.Buffer
}

// stream returns a new connection's recording.
func (r *recordingNetwork) stream() *bytes.Buffer {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &bytes.Buffer{}
	r.conns = append(r.conns, b)
	return b
}

func (r *recordingNetwork) record(b *bytes.Buffer, p []byte) {
	r.mu.Lock()
	b.Write(p)
	r.mu.Unlock()
}

// bytes returns every connection's recording, one after the other, each
// followed by a zero byte; nil when nothing was written.
func (r *recordingNetwork) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []byte
	for _, b := range r.conns {
		if b.Len() > 0 {
			all = append(append(all, b.Bytes()...), 0)
		}
	}
	return all
}

func (r *recordingNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := r.Network.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &recordingListener{Listener: ln, r: r}, nil
}

func (r *recordingNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := r.Network.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, r: r, b: r.stream()}, nil
}

type recordingListener struct {
	net.Listener
	r *recordingNetwork
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, r: l.r, b: l.r.stream()}, nil
}

type recordingConn struct {
	net.Conn
	r *recordingNetwork
	b *bytes.Buffer // this connection's recording
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.r.record(c.b, p)
	return c.Conn.Write(p)
}

// startLoopbackWith starts nodes named ids on 127.0.0.1 with real sockets,
// each Config edited by edit (which may set Network, secrets and keys).
func startLoopbackWith(t testing.TB, logs *syncBuffer, ids []string, edit func(i int, cfg *Config)) []*testNode {
	t.Helper()
	var nodes []*testNode
	t.Cleanup(func() {
		for _, n := range nodes {
			n.c.Close()
		}
	})
	for i, id := range ids {
		cfg := Config{
			NodeID:   id,
			BindAddr: "127.0.0.1",
			Replicas: -1,
			Meta:     Meta{RESPAddr: "127.0.0.1:6379"},
			Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("at", id),
			Timing:   FastTiming(),
		}
		if i > 0 {
			cfg.Join = []string{nodes[0].c.Self().GossipAddr}
		}
		edit(i, &cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		h := &fakeHandler{id: id}
		c, err := Start(ctx, cfg, h)
		cancel()
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		h.c = c
		nodes = append(nodes, &testNode{name: id, c: c, h: h})
	}
	return nodes
}

func dumpLogsOnFailure(t *testing.T) *syncBuffer {
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", logs.String())
		}
	})
	return logs
}

// Markers that must never cross the cluster port in cleartext: a key and a
// value a forwarded command carries, and the node IDs raft's entries carry.
const (
	markerKey   = "cleartext-marker-key:4bd1e7"
	markerValue = "cleartext-marker-value:9c02fa"
)

var markerIDs = []string{"marker-node-one", "marker-node-two", "marker-node-three"}

// forwardMarkers forwards a command carrying markerKey and markerValue from
// the first node to the last, and checks the reply.
func forwardMarkers(t *testing.T, nodes []*testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var w traceWriter
	last := nodes[len(nodes)-1]
	err := nodes[0].c.Forward(ctx, last.name, [][]byte{[]byte("echo"), []byte(markerValue), []byte(markerKey)}, &w)
	if want := `bulk "` + markerValue + `"`; err != nil || w.String() != want {
		t.Fatalf("forward: %q, %v; want %s", w.String(), err, want)
	}
}

// cleartext lists the markers found in b.
func cleartext(b []byte) []string {
	var found []string
	for _, m := range append([]string{markerKey, markerValue}, markerIDs...) {
		if bytes.Contains(b, []byte(m)) {
			found = append(found, m)
		}
	}
	return found
}

// TestClusterTLSLoopback: over real sockets, nodes with certificates from
// the cluster's CA (and a gossip key) form a cluster and forward, and
// nothing they write on the cluster port shows a forwarded key or value or
// a raft entry's node ID. The same cluster without TLS shows them all,
// which proves the recording sees the traffic.
func TestClusterTLSLoopback(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	gossip := bytes.Repeat([]byte{0x5a}, 32)
	for _, tc := range []struct {
		name      string
		encrypted bool
		edit      func(i int, cfg *Config, rec *recordingNetwork)
	}{
		{"plaintext", false, func(i int, cfg *Config, rec *recordingNetwork) {
			cfg.Network = rec
		}},
		{"certificates", true, func(i int, cfg *Config, rec *recordingNetwork) {
			cfg.GossipKey = gossip
			cfg.Network = mustTLS(t, rec, ca.issue(t, markerIDs[i], nil), cfg.Logger)
		}},
		{"certificates and secret", true, func(i int, cfg *Config, rec *recordingNetwork) {
			cfg.ClusterSecret = []byte("tls and a secret, 16+ bytes")
			cfg.Network = mustTLS(t, rec, ca.issue(t, markerIDs[i], nil), cfg.Logger)
		}},
		{"secret", true, func(i int, cfg *Config, rec *recordingNetwork) {
			cfg.ClusterSecret = []byte("just a secret, 16+ bytes")
			cfg.Network = rec
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := dumpLogsOnFailure(t)
			rec := &recordingNetwork{Network: TCPNetwork{}}
			nodes := startLoopbackWith(t, logs, markerIDs, func(i int, cfg *Config) { tc.edit(i, cfg, rec) })
			waitConverged(t, 10*time.Second, nodes, markerIDs...)
			forwardMarkers(t, nodes)
			found := cleartext(rec.bytes())
			switch {
			case len(rec.bytes()) == 0:
				t.Fatal("nothing recorded")
			case tc.encrypted && len(found) > 0:
				t.Errorf("the cluster port carried %q in cleartext", found)
			case !tc.encrypted && len(found) != 2+len(markerIDs):
				t.Errorf("plaintext cluster port: found only %q; the recording misses traffic", found)
			}
			t.Logf("%s: %d bytes on the cluster port", tc.name, len(rec.bytes()))
		})
	}
}

// TestClusterTLSStrangers: a cluster of nodes with certificates and a gossip
// key, over real sockets, and processes that lack one or the other: none
// can join, none can open a raft or peer connection to a member (so none
// can send a command or read a reply), and a member refuses to send
// anything to a listener whose certificate the CA did not sign.
func TestClusterTLSStrangers(t *testing.T) {
	restore := handshakeTimeout
	handshakeTimeout = time.Second
	t.Cleanup(func() { handshakeTimeout = restore })
	logs := dumpLogsOnFailure(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "cluster")
	other := newTestCA(t, dir, "other")
	gossip := bytes.Repeat([]byte{0x5a}, 32)
	ids := []string{"n1", "n2", "n3"}
	nodes := startLoopbackWith(t, logs, ids, func(i int, cfg *Config) {
		cfg.GossipKey = gossip
		cfg.Network = mustTLS(t, TCPNetwork{}, ca.issue(t, ids[i], nil), cfg.Logger)
	})
	waitConverged(t, 10*time.Second, nodes, ids...)
	target := nodes[1].c.Self().ClusterAddr
	log := slog.New(slog.NewTextHandler(logs, nil)).With("at", "stranger")

	expired := ca.issue(t, "expired", func(c *x509.Certificate) {
		c.NotBefore = time.Now().Add(-48 * time.Hour)
		c.NotAfter = time.Now().Add(-24 * time.Hour)
	})
	serverOnly := ca.issue(t, "server-only", func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	// WithTLS refuses the files of a node that could never connect; a
	// stranger with such a certificate would bypass that check, so build
	// its network by hand.
	for _, f := range []TLSFiles{expired, serverOnly} {
		if _, err := WithTLS(TCPNetwork{}, f, log); err == nil {
			t.Errorf("WithTLS accepted %s", f.CertFile)
		}
	}
	// It trusts any listener, so that the listener's check of the
	// stranger's certificate is what decides.
	byHand := func(f TLSFiles) Network {
		tf := &tlsFiles{files: f, log: log}
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg := tlsBase()
		cfg.Certificates = []tls.Certificate{pair}
		cfg.InsecureSkipVerify = true
		tf.cur.Store(&tlsLoaded{server: cfg, client: cfg})
		tf.checked.Store(time.Now().Add(time.Hour).UnixNano())
		return &tlsNetwork{Network: TCPNetwork{}, files: tf}
	}

	for _, s := range []struct {
		name string
		net  Network
	}{
		{"another CA's certificate", mustTLS(t, TCPNetwork{}, other.issue(t, "stranger", nil), log)},
		{"another CA's certificate, trusting any listener", byHand(other.issue(t, "stranger", nil))},
		{"an expired certificate", byHand(expired)},
		{"a certificate for servers only", byHand(serverOnly)},
	} {
		t.Run(s.name, func(t *testing.T) {
			for _, proto := range []byte{protoRaft, protoPeer} {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				conn, err := dialProto(ctx, s.net, nil, target, proto)
				cancel()
				if err == nil {
					// TLS 1.3: the dialer's handshake completes before the
					// listener has checked its certificate; the listener
					// then closes without a byte of the protocol.
					expectClosed(t, conn, commandFrame("whoami"))
				}
			}
		})
	}
	t.Run("a stranger with the gossip key but no certificate cannot join raft", func(t *testing.T) {
		// Gossip lets it in; raft and the peer protocol do not. (The
		// leader may still list it: see the package doc on gossip keys.)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := Start(ctx, Config{
			NodeID: "stranger", BindAddr: "127.0.0.1", Timing: FastTiming(), Replicas: -1,
			GossipKey: gossip, Join: []string{nodes[0].c.Self().GossipAddr},
			Logger: log, Network: mustTLS(t, TCPNetwork{}, other.issue(t, "stranger2", nil), log),
		}, &fakeHandler{id: "stranger"})
		cancel()
		if err == nil {
			defer c.Close()
			if tb := c.Table(); tb != nil {
				t.Fatalf("the stranger has a table (epoch %d): raft reached it", tb.Epoch)
			}
		} else if !errors.Is(err, ErrNoTable) {
			t.Fatalf("start: %v", err)
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		for _, send := range [][]byte{
			{protoRaft},
			append([]byte{protoPeer}, commandFrame("whoami")...),
			append(make([]byte, nonceSize+proofSize), protoPeer),
		} {
			conn, err := net.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			expectClosed(t, conn, send)
		}
	})
	t.Run("a member does not talk to a listener the CA did not sign", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f := other.issue(t, "impostor", nil)
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			raw, err := ln.Accept()
			if err != nil {
				got <- err
				return
			}
			defer raw.Close()
			_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
			tc := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequestClientCert})
			if err := tc.Handshake(); err != nil {
				got <- err
				return
			}
			b, _ := io.ReadAll(tc)
			got <- errors.New("the member completed the handshake and sent " + string(b))
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := dialProto(ctx, nodes[0].c.net, nil, ln.Addr().String(), protoPeer)
		if err == nil {
			conn.Close()
			t.Fatal("a member dialed a listener with another CA's certificate")
		}
		if err := <-got; err == nil || strings.Contains(err.Error(), "the member completed") {
			t.Fatalf("impostor: %v", err)
		}
	})
	for _, n := range nodes {
		if served := n.h.servedCount(); served != 0 {
			t.Errorf("%s served %d commands from strangers", n.name, served)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var w traceWriter
	if err := nodes[0].c.Forward(ctx, "n2", [][]byte{[]byte("whoami")}, &w); err != nil || w.String() != `bulk "n2"` {
		t.Fatalf("forward after the strangers: %q, %v", w.String(), err)
	}
	if st := nodes[0].c.Status(); !st.HasQuorum || st.Voters != 3 {
		t.Errorf("status after the strangers: %+v", st)
	}
	if !strings.Contains(logs.String(), "TLS handshake failed") {
		t.Error("no TLS handshake failure was logged")
	}
}

// TestClusterTLSMem: nodes with certificates form a cluster and forward on
// a MemNetwork too.
func TestClusterTLSMem(t *testing.T) {
	h := newHarness(t)
	ca := newTestCA(t, t.TempDir(), "cluster")
	withTLS := func(name string, cfg Config) Config {
		cfg.Network = mustTLS(t, cfg.Network, ca.issue(t, name, nil), cfg.Logger)
		cfg.GossipKey = bytes.Repeat([]byte{1}, 16)
		return cfg
	}
	nodes := []*testNode{h.start("n1", withTLS("n1", h.config("n1", "")))}
	for _, name := range []string{"n2", "n3"} {
		nodes = append(nodes, h.start(name, withTLS(name, h.config(name, "n1"))))
	}
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range nodes {
		var w traceWriter
		if err := nodes[0].c.Forward(ctx, n.name, [][]byte{[]byte("whoami")}, &w); err != nil || w.String() != `bulk "`+n.name+`"` {
			t.Fatalf("forward to %s: %q, %v", n.name, w.String(), err)
		}
	}
	if st := nodes[2].c.Status(); !st.HasQuorum || st.Voters != 3 {
		t.Errorf("status: %+v", st)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close(); accepted.Close() })
	_ = dialed.SetDeadline(time.Now().Add(5 * time.Second))
	_ = accepted.SetDeadline(time.Now().Add(5 * time.Second))
	return dialed, accepted
}

// handshakePair runs secureDialed and secureAccepted on the two ends of a
// loopback connection, and returns their connections and errors.
func handshakePair(t *testing.T, dn Network, dsecret []byte, an Network, asecret []byte) (dc, ac net.Conn, derr, aerr error) {
	t.Helper()
	d, a := tcpPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ac, aerr = secureAccepted(a, an, asecret)
		if aerr == nil {
			// Read what the dialer sends after its handshake.
			_, aerr = ac.Read(make([]byte, 1))
		}
		if aerr != nil || ac == a {
			// Refused, or plaintext: hang up, as route would.
			a.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dc, derr = secureDialed(ctx, d, dn, dsecret)
	if derr == nil {
		_, derr = dc.Write(append([]byte{protoPeer}, commandFrame("whoami")...))
		if derr == nil {
			// The listener's verdict on our certificate arrives as an
			// alert, or as the listener's silence once it reads that.
			_ = dc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := dc.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				derr = err
			}
		}
	}
	<-done
	return dc, ac, derr, aerr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSecretTLS: with only a secret, both ends of a connection with the
// same secret agree on TLS 1.3; another secret, or none, fails on both ends.
func TestSecretTLS(t *testing.T) {
	secret := []byte("the cluster's secret, 16+ bytes")
	plain := TCPNetwork{}
	t.Run("same secret", func(t *testing.T) {
		dc, ac, derr, aerr := handshakePair(t, plain, secret, plain, secret)
		if derr != nil || aerr != nil {
			t.Fatalf("dialer: %v, listener: %v", derr, aerr)
		}
		for _, c := range []net.Conn{dc, ac} {
			st := c.(*tlsConn).ConnectionState()
			if st.Version != tls.VersionTLS13 || st.DidResume || len(st.PeerCertificates) != 1 {
				t.Errorf("state: version %x, resumed %v, %d peer certificates", st.Version, st.DidResume, len(st.PeerCertificates))
			}
		}
	})
	for _, tc := range []struct {
		name             string
		dialer, listener []byte
	}{
		{"another secret", []byte("another secret, 16+ bytes"), secret},
		{"a prefix", secret[:16], secret},
		{"dialer without", nil, secret},
		{"listener without", secret, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, derr, aerr := handshakePair(t, plain, tc.dialer, plain, tc.listener)
			// A listener without a secret takes anything (the dialer's
			// TLS hello for a protocol byte); the dialer still refuses it.
			if derr == nil || (aerr == nil && tc.listener != nil) {
				t.Fatalf("dialer: %v, listener: %v; want both to fail", derr, aerr)
			}
		})
	}
	a, _ := secretTLSFor(secret)
	b, _ := newSecretTLS(secret)
	ka := a.clientConfig().Certificates[0].PrivateKey.(ed25519.PrivateKey)
	kb := b.clientConfig().Certificates[0].PrivateKey.(ed25519.PrivateKey)
	if !ka.Equal(kb) {
		t.Error("the derived key is not deterministic")
	}
	c, _ := newSecretTLS([]byte("another secret, 16+ bytes"))
	if ka.Equal(c.clientConfig().Certificates[0].PrivateKey) {
		t.Error("two secrets derive the same key")
	}
}

// TestTLSFilesReload: new connections take rotated certificate files; a
// rotation that does not load keeps the previous material.
func TestTLSFilesReload(t *testing.T) {
	dir := t.TempDir()
	ca1 := newTestCA(t, dir, "ca1")
	ca2 := newTestCA(t, dir, "ca2")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The node under test reads files at fixed paths; others are issued
	// where they fall.
	live := ca1.issue(t, "live", nil)
	n := mustTLS(t, TCPNetwork{}, live, log)
	files := n.(*tlsNetwork).files
	peer1 := mustTLS(t, TCPNetwork{}, ca1.issue(t, "peer", nil), log)
	peer2 := mustTLS(t, TCPNetwork{}, ca2.issue(t, "peer", nil), log)
	talks := func(peer Network) bool {
		_, _, derr, aerr := handshakePair(t, peer, nil, n, nil)
		_, _, derr2, aerr2 := handshakePair(t, n, nil, peer, nil)
		return derr == nil && aerr == nil && derr2 == nil && aerr2 == nil
	}
	if !talks(peer1) || talks(peer2) {
		t.Fatal("before the rotation: want to talk to ca1's peer only")
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A half-done rotation (a certificate of ca2 with the old key) does
	// not load: the old material stays.
	next := ca2.issue(t, "next", nil)
	copyFile(next.CertFile, live.CertFile)
	if err := files.reload(false); err == nil {
		t.Fatal("reload of a certificate with another's key succeeded")
	}
	if !talks(peer1) {
		t.Fatal("a failed reload lost the previous material")
	}
	copyFile(next.KeyFile, live.KeyFile)
	copyFile(ca2.file, live.CAFile)
	// The check a handshake makes once a second, made due now.
	files.checked.Store(0)
	if !talks(peer2) || talks(peer1) {
		t.Fatal("after the rotation: want to talk to ca2's peer only")
	}
}

// FuzzSecureAccepted feeds the listener's TLS arbitrary bytes from a
// dialer: it must never panic and never accept, since only a holder of the
// secret can finish the handshake.
func FuzzSecureAccepted(f *testing.F) {
	secret := []byte("fuzzing secret, 16+ bytes")
	// A real ClientHello to start from.
	var hello bytes.Buffer
	c := tls.Client(&scriptConn{out: &hello}, mustSecretTLS(f, secret).clientConfig())
	_ = c.Handshake() // fails at EOF, after writing its hello
	f.Add(hello.Bytes())
	f.Add([]byte{})
	f.Add([]byte{protoPeer})
	f.Add(append([]byte{0x16, 0x03, 0x01, 0x00, 0x05}, 1, 0, 0, 1, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		conn, err := secureAccepted(&scriptConn{in: bytes.NewReader(in), out: io.Discard}, TCPNetwork{}, secret)
		if err == nil {
			t.Fatalf("accepted %d bytes as a peer: %v", len(in), conn)
		}
	})
}

func mustSecretTLS(t testing.TB, secret []byte) tlsSource {
	s, err := secretTLSFor(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scriptConn is a net.Conn that reads in and writes to out.
type scriptConn struct {
	in  io.Reader
	out io.Writer
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.in == nil {
		return 0, io.EOF
	}
	return c.in.Read(p)
}
func (c *scriptConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return tcpAddr("127.0.0.1:1") }
func (c *scriptConn) RemoteAddr() net.Addr             { return tcpAddr("127.0.0.1:2") }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkForwardTLS is BenchmarkForwardLoopback's round trip for each
// setting of the cluster port: what TLS costs a forwarded command.
func BenchmarkForwardTLS(b *testing.B) {
	ca := newTestCA(b, b.TempDir(), "cluster")
	for _, s := range []struct {
		name string
		edit func(i int, cfg *Config)
	}{
		{"plaintext", func(int, *Config) {}},
		{"secret", func(_ int, cfg *Config) { cfg.ClusterSecret = []byte("bench secret, 16+ bytes") }},
		{"certificates", func(i int, cfg *Config) {
			cfg.GossipKey = bytes.Repeat([]byte{3}, 32)
			cfg.Network = mustTLS(b, TCPNetwork{}, ca.issue(b, "n"+string(rune('1'+i)), nil), cfg.Logger)
		}},
	} {
		b.Run(s.name, func(b *testing.B) {
			nodes := startLoopbackWith(b, &syncBuffer{}, []string{"n1", "n2"}, s.edit)
			waitConverged(b, 10*time.Second, nodes, "n1", "n2")
			c := nodes[0].c
			args := [][]byte{[]byte("echo"), make([]byte, 64)}
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.Forward(ctx, "n2", args, discard{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(16)
				var once sync.Once
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := c.Forward(ctx, "n2", args, discard{}); err != nil {
							once.Do(func() { b.Error(err) })
							return
						}
					}
				})
			})
		})
	}
}
