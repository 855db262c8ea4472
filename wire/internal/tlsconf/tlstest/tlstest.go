// Package tlstest makes throwaway certificates for the listeners' tests: a
// CA, a server certificate for loopback and localhost, and client
// certificates, written to a test's temporary directory.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

var serial atomic.Int64

// CA is a throwaway certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte
}

// NewCA returns a CA named name, valid for an hour.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
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
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue returns a certificate signed by the CA, and its key, as PEM: for a
// server on this host (loopback and localhost) when server is set, else
// for a client.
func (ca *CA) Issue(t testing.TB, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
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

// Setup is a CA with a server certificate (CN ServerCN) and a client
// certificate, written to files in Dir, and a client certificate of
// another CA.
type Setup struct {
	Dir                           string
	CA                            *CA
	CAFile, CertFile, KeyFile     string // the server's
	ServerCN                      string
	ClientCertFile, ClientKeyFile string
	ClientPair                    tls.Certificate
	OtherClientPair               tls.Certificate // signed by another CA
	Roots                         *x509.CertPool
}

// New writes a CA, a server certificate named "server-1" and a client
// certificate to a temporary directory of t.
func New(t testing.TB) *Setup {
	t.Helper()
	s := &Setup{Dir: t.TempDir(), CA: NewCA(t, "sluice test CA")}
	s.CAFile = s.write(t, "ca.pem", s.CA.PEM)
	s.Rotate(t, "server-1")
	cert, key := s.CA.Issue(t, "client", false)
	s.ClientCertFile, s.ClientKeyFile = s.write(t, "client.pem", cert), s.write(t, "client.key", key)
	var err error
	if s.ClientPair, err = tls.X509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	cert, key = NewCA(t, "another CA").Issue(t, "stranger", false)
	if s.OtherClientPair, err = tls.X509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	s.Roots = x509.NewCertPool()
	s.Roots.AddCert(s.CA.Cert)
	return s
}

func (s *Setup) write(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Rotate writes a new server certificate and key named cn, replacing the
// files atomically as a certificate manager does.
func (s *Setup) Rotate(t testing.TB, cn string) {
	t.Helper()
	cert, key := s.CA.Issue(t, cn, true)
	s.CertFile, s.KeyFile = filepath.Join(s.Dir, "server.pem"), filepath.Join(s.Dir, "server.key")
	for path, data := range map[string][]byte{s.CertFile: cert, s.KeyFile: key} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	s.ServerCN = cn
}

// ClientConfig trusts the test CA and, with withCert, presents the client
// certificate.
func (s *Setup) ClientConfig(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: s.Roots, ServerName: "localhost"}
	if withCert {
		cfg.Certificates = []tls.Certificate{s.ClientPair}
	}
	return cfg
}
