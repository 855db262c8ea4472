package tlsconf

import (
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/wire/internal/tlsconf/tlstest"
)

// fakeClock is a settable clock for the rotation checks.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// served returns the common name of the certificate the next handshake
// would present.
func served(t *testing.T, f *Files) string {
	t.Helper()
	cfg, err := f.Config().GetConfigForClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

// TestRotation rotates the certificate: Reload takes it at once; a change
// of the files is noticed by the first handshake after CheckInterval, not
// before; files that do not load leave the previous material in use, and
// are reported once.
func TestRotation(t *testing.T) {
	ts := tlstest.New(t)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	f, err := load("test", ts.CertFile, ts.KeyFile, "", slog.New(slog.DiscardHandler), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, f); got != "server-1" {
		t.Fatalf("certificate %q, want server-1", got)
	}

	ts.Rotate(t, "server-2")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, f); got != "server-2" {
		t.Fatalf("after Reload: %q, want server-2", got)
	}

	ts.Rotate(t, "server-3")
	clock.add(CheckInterval / 2)
	if got := served(t, f); got != "server-2" {
		t.Fatalf("before CheckInterval: %q, want server-2 still", got)
	}
	clock.add(CheckInterval)
	if got := served(t, f); got != "server-3" {
		t.Fatalf("after CheckInterval: %q, want server-3", got)
	}

	// A key that does not match the certificate.
	_, otherKey := ts.CA.Issue(t, "mismatch", true)
	if err := os.WriteFile(ts.KeyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err == nil {
		t.Fatal("Reload accepted a key that does not match the certificate")
	}
	for range 3 {
		clock.add(2 * CheckInterval)
		if got := served(t, f); got != "server-3" {
			t.Fatalf("after a failed rotation: %q, want server-3", got)
		}
	}
	if f.failed == (stamps{}) {
		t.Fatal("the failed files' stamps were not kept, so they would be retried at every check")
	}
}

func TestLoadErrors(t *testing.T) {
	ts := tlstest.New(t)
	garbage := filepath.Join(ts.Dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	for _, tt := range []struct{ name, cert, key, ca string }{
		{"a certificate without a key", ts.CertFile, "", ""},
		{"a CA alone", "", "", ts.CAFile},
		{"a missing file", ts.CertFile, filepath.Join(ts.Dir, "missing"), ""},
		{"a key that does not match", ts.CertFile, ts.ClientKeyFile, ""},
		{"a CA file without certificates", ts.CertFile, ts.KeyFile, garbage},
	} {
		if _, err := Load("test", tt.cert, tt.key, tt.ca, nil); err == nil {
			t.Errorf("%s: Load succeeded", tt.name)
		}
	}
	f, err := Load("test", ts.CertFile, ts.KeyFile, ts.CAFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := f.Config().GetConfigForClient(nil)
	if cfg.ClientCAs == nil || cfg.MinVersion != 0x0303 {
		t.Fatalf("with a CA: ClientCAs %v, MinVersion %x", cfg.ClientCAs, cfg.MinVersion)
	}
}
