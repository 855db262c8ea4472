package fb

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/internal/tlsconf/tlstest"
)

// startTLS runs a node with a TLS FlatBuffers server; withCA asks clients
// for a certificate signed by the test CA.
func startTLS(t *testing.T, ts *tlstest.Setup, withCA bool, cfg node.Config) (*node.Node, *Server) {
	t.Helper()
	scfg := Config{TLSCertFile: ts.CertFile, TLSKeyFile: ts.KeyFile}
	if withCA {
		scfg.TLSCAFile = ts.CAFile
	}
	return startNode(t, cfg, scfg)
}

// TestTLS runs the Go client over TLS with a client certificate and a
// password: a value larger than a TLS record, and batches of many
// goroutines pipelined on shared connections. Clients without TLS, without
// a certificate, or with a wrong password get nothing.
func TestTLS(t *testing.T) {
	ts := tlstest.New(t)
	_, s := startTLS(t, ts, true, node.Config{RequirePass: "secret"})
	c := dialClient(t, s, Options{TLS: ts.ClientConfig(true), Password: "secret"})

	big := bytes.Repeat([]byte("v"), 1<<20)
	var b Batch
	b.Set("big", big, 0)
	get := b.Get("big")
	do(t, c, &b)
	if v, ok := b.Result(get).Value(); !ok || !bytes.Equal(v, big) {
		t.Fatalf("GET over TLS: %d bytes, %v", len(v), ok)
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var b Batch
			for i := range 50 {
				b.Reset()
				key := "k" + string(rune('a'+g))
				b.Set(key, []byte{byte(i)}, 0)
				get := b.Get(key)
				if err := c.Do(context.Background(), &b); err != nil {
					t.Error(err)
					return
				}
				if v, _ := b.Result(get).Value(); len(v) != 1 || v[0] != byte(i) {
					t.Errorf("goroutine %d, batch %d: %q", g, i, v)
					return
				}
			}
		})
	}
	wg.Wait()

	for _, tt := range []struct {
		name string
		o    Options
		want string // the error's prefix; "" for any
	}{
		{"plaintext", Options{Password: "secret"}, ""},
		{"no client certificate", Options{TLS: ts.ClientConfig(false), Password: "secret"}, ""},
		{"a certificate of another CA", Options{Password: "secret", TLS: &tls.Config{RootCAs: ts.Roots, ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &ts.OtherClientPair, nil }}}, ""},
		{"an untrusted server", Options{Password: "secret", TLS: &tls.Config{ServerName: "localhost", Certificates: []tls.Certificate{ts.ClientPair}}}, ""},
		{"a wrong password", Options{TLS: ts.ClientConfig(true), Password: "wrong"}, "WRONGPASS"},
	} {
		o := tt.o
		o.DialTimeout = 5 * time.Second
		c, err := DialOptions(s.Addr(), o)
		if err == nil {
			c.Close()
			t.Errorf("%s: dialled", tt.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}

	// Still serving.
	b.Reset()
	b.Get("ka")
	do(t, c, &b)
}

// TestTLSWithoutCA checks that without a CA clients are not asked for a
// certificate, and TLS 1.1 is refused.
func TestTLSWithoutCA(t *testing.T) {
	ts := tlstest.New(t)
	_, s := startTLS(t, ts, false, node.Config{})
	c := dialClient(t, s, Options{TLS: ts.ClientConfig(false)})
	var b Batch
	b.Set("k", []byte("v"), 0)
	get := b.Get("k")
	do(t, c, &b)
	if v, _ := b.Result(get).Value(); string(v) != "v" {
		t.Fatalf("GET: %q", v)
	}
	old := &tls.Config{RootCAs: ts.Roots, ServerName: "localhost", MaxVersion: tls.VersionTLS11}
	if nc, err := tls.Dial("tcp", s.Addr(), old); err == nil {
		nc.Close()
		t.Fatal("a TLS 1.1 client was accepted")
	}
}

// TestTLSReload rotates the certificate: ReloadTLS takes it for new
// connections at once; established ones keep working.
func TestTLSReload(t *testing.T) {
	ts := tlstest.New(t)
	_, s := startTLS(t, ts, false, node.Config{})
	served := func() string {
		t.Helper()
		nc, err := tls.Dial("tcp", s.Addr(), ts.ClientConfig(false))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		return nc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "server-1" {
		t.Fatalf("certificate %q, want server-1", got)
	}
	c := dialClient(t, s, Options{TLS: ts.ClientConfig(false), Conns: 1})
	ts.Rotate(t, "server-2")
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "server-2" {
		t.Fatalf("after ReloadTLS: %q, want server-2", got)
	}
	var b Batch
	b.Get("k")
	do(t, c, &b)
}

// TestTLSMaxClients checks that a TLS client over maxclients is dropped
// before its handshake, as on the RESP port.
func TestTLSMaxClients(t *testing.T) {
	ts := tlstest.New(t)
	_, s := startTLS(t, ts, false, node.Config{Limits: node.Limits{MaxClients: 1}})
	dialClient(t, s, Options{TLS: ts.ClientConfig(false), Conns: 1})
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: ts.ClientConfig(false)}
	if nc, err := d.Dial("tcp", s.Addr()); err == nil {
		nc.Close()
		t.Fatal("the handshake of a client over maxclients succeeded")
	}
}
