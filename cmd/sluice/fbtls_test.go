package main

import (
	"bytes"
	"context"
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
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluicedb/sluice/wire/fb"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns the files and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// TestFlatBuffersTLS runs the binary with the FlatBuffers port over TLS
// only (--fb-tls-port, --fb-port 0): the Go client with a tls.Config and
// the password reads and writes; SIGHUP reloads the certificate.
func TestFlatBuffersTLS(t *testing.T) {
	bin := buildSluice(t)
	certFile, keyFile, roots := selfSigned(t, t.TempDir())
	port, fbTLSPort := freePort(t), freePort(t)
	cmd := exec.Command(bin, "--port", port, "--fb-port", "0", "--fb-tls-port", fbTLSPort,
		"--tls-cert", certFile, "--tls-key", keyFile, "--requirepass", "pw",
		"--admin-port", "0", "--gossip-port", freePort(t), "--cluster-port", freePort(t), "--log-format", "json")
	var logs bytes.Buffer // read only after the process is gone
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sluice's log:\n%s", logs.String())
		}
	}()

	addr := "127.0.0.1:" + fbTLSPort
	opts := fb.Options{TLS: &tls.Config{RootCAs: roots}, Password: "pw", DialTimeout: time.Second}
	var c *fb.Client
	for deadline := time.Now().Add(20 * time.Second); ; {
		var err error
		if c, err = fb.DialOptions(addr, opts); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialling the FlatBuffers TLS port: %v", err)
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("sluice exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b fb.Batch
	b.Set("k", []byte("over tls"), 0)
	get := b.Get("k")
	if err := c.Do(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Result(get).Value(); string(v) != "over tls" {
		t.Fatalf("GET over TLS: %q, %v", v, b.Result(get).Err())
	}
	if c, err := fb.DialOptions(addr, fb.Options{Password: "pw", DialTimeout: time.Second}); err == nil {
		c.Close()
		t.Error("a plaintext client was served by the TLS port")
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c2, err := fb.DialOptions(addr, opts)
	if err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	c2.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	exited <- nil
	if !bytes.Contains(logs.Bytes(), []byte(`"fb_tls":"127.0.0.1:`+fbTLSPort+`"`)) {
		t.Error("the start log does not name the FlatBuffers TLS address")
	}
}
