// Package tlsconf is the TLS material of a client port, shared by the RESP
// and FlatBuffers listeners: a certificate and key, and optionally a CA
// bundle that client certificates must be signed by, read from PEM files
// and read again when the files change, so that certificates rotate
// without a restart.
//
// Each handshake uses the files as they were last read; one handshake a
// second at most (CheckInterval) first looks at their modification times
// and sizes, which costs three stat calls and nothing on established
// connections. A rotation that cannot be read (a key that does not match,
// a file half written) is logged and the previous material kept; the next
// check tries again. Established connections keep the certificate they
// were made with. TLS 1.2 is the oldest version accepted.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// CheckInterval is how often, at most, a handshake looks at the files'
	// modification times to see whether they were rotated.
	CheckInterval = time.Second
	// HandshakeTimeout bounds a TLS handshake, which a client that connects
	// and sends nothing (or plaintext that never completes a record) would
	// otherwise hold open, with its maxclients slot, forever.
	HandshakeTimeout = 10 * time.Second
)

// Files is a listener's TLS material, read from PEM files and read again
// when they change. It is safe for concurrent use.
type Files struct {
	cert, key, ca string
	name          string // the listener, for logs and errors ("resp", "fb")
	log           *slog.Logger
	config        *tls.Config      // hands out the material loaded last
	now           func() time.Time // the clock of the checks; tests set it

	cur     atomic.Pointer[loaded]
	checked atomic.Int64 // Unix ns of the last look at the files

	mu     sync.Mutex // one reload at a time
	failed stamps     // the files' stamps when they last failed to load
}

// loaded is the material of one read of the files.
type loaded struct {
	config *tls.Config
	stamps stamps
}

// stamps identify the versions of the certificate, key and CA files: a
// file rewritten, or a symlink swapped to a new one (as Kubernetes updates
// a mounted secret), changes its modification time or size.
type stamps [3]struct {
	mod  time.Time
	size int64
}

// Load reads the certificate and key files, and the CA bundle when ca is
// not "" (clients must then present a certificate it signed). name is the
// listener's, for logs and errors. Load fails when the files do not make a
// usable configuration, so that a listener does not start with one it
// cannot use.
func Load(name, cert, key, ca string, log *slog.Logger) (*Files, error) {
	return load(name, cert, key, ca, log, time.Now)
}

// load is Load with the clock of the rotation checks.
func load(name, cert, key, ca string, log *slog.Logger, now func() time.Time) (*Files, error) {
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%s: TLS needs both a certificate and a key file (got %q and %q)", name, cert, key)
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Files{cert: cert, key: key, ca: ca, name: name, log: log, now: now}
	l, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(l)
	f.checked.Store(f.now().UnixNano())
	f.config = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: f.forClient,
	}
	return f, nil
}

// Config is the configuration to serve connections with (tls.Server): it
// hands each handshake the material loaded last.
func (f *Files) Config() *tls.Config { return f.config }

// Reload reads the files again, at once, for a SIGHUP handler. Connections
// made from now on use the new material; established ones keep theirs.
// When the files do not load, the material in use stays and Reload returns
// the error.
func (f *Files) Reload() error { return f.reload(false) }

// paths lists the files in the order of stamps; the CA may be "".
func (f *Files) paths() [3]string { return [3]string{f.cert, f.key, f.ca} }

// stat returns the files' stamps.
func (f *Files) stat() (stamps, error) {
	var s stamps
	for i, p := range f.paths() {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return s, fmt.Errorf("%s: TLS file: %w", f.name, err)
		}
		s[i].mod, s[i].size = fi.ModTime(), fi.Size()
	}
	return s, nil
}

// load reads the files. The stamps are taken first, so that a file that
// changes while it is read shows as changed at the next check.
func (f *Files) load() (*loaded, error) {
	st, err := f.stat()
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("%s: TLS certificate %s and key %s: %w", f.name, f.cert, f.key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
	}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("%s: TLS CA file: %w", f.name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: TLS CA file %s holds no PEM certificate", f.name, f.ca)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &loaded{config: cfg, stamps: st}, nil
}

// reload reads the files again and, if they load, makes new connections
// use them. With onlyChanged it does nothing when their stamps are those
// of the material in use, or of an attempt that failed already.
func (f *Files) reload(onlyChanged bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if onlyChanged {
		// A file that cannot be stat'ed leaves its stamp zero, so a missing
		// file also counts as a change, and is reported once.
		st, _ := f.stat()
		if st == f.cur.Load().stamps || st == f.failed {
			return nil
		}
	}
	l, err := f.load()
	if err != nil {
		if onlyChanged {
			f.failed, _ = f.stat()
		}
		return err
	}
	f.cur.Store(l)
	f.failed = stamps{}
	f.log.Info(f.name+": TLS certificate loaded", "cert", f.cert, "ca", f.ca)
	return nil
}

// forClient is the GetConfigForClient hook: it returns the material in
// use, after checking the files if CheckInterval has passed.
func (f *Files) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	now := f.now().UnixNano()
	if last := f.checked.Load(); now-last >= int64(CheckInterval) && f.checked.CompareAndSwap(last, now) {
		if err := f.reload(true); err != nil {
			f.log.Warn(f.name+": TLS files changed but cannot be loaded; keeping the previous certificate", "err", err)
		}
	}
	return f.cur.Load().config, nil
}
