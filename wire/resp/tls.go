package resp

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

// TLS timing.
const (
	// tlsCheckInterval is how often, at most, a handshake looks at the
	// certificate files' modification times to see whether they were
	// rotated: three stat calls, once a second at most whatever the rate of
	// new connections, and none on established ones.
	tlsCheckInterval = time.Second
	// handshakeTimeout bounds a TLS handshake, which a client that
	// connects and sends nothing (or plaintext that never completes a
	// record) would otherwise hold open, with its maxclients slot, forever.
	handshakeTimeout = 10 * time.Second
)

// tlsFiles is a server's TLS material, read from PEM files and read again
// when they change, so that certificates are rotated without a restart:
// each handshake uses the files as they were last read, and one handshake a
// second at most checks them first (tlsCheckInterval). A rotation that
// cannot be read (a key that does not match, a file half written) is logged
// and the previous material kept; the next check tries again. Established
// connections keep the certificate they were made with.
type tlsFiles struct {
	cert, key, ca string
	log           *slog.Logger
	// config is what connections are made with; it hands out the material
	// loaded last for each handshake.
	config *tls.Config

	cur     atomic.Pointer[tlsLoaded]
	checked atomic.Int64 // Unix ns of the last look at the files

	mu     sync.Mutex // one reload at a time
	failed stamps     // the files' stamps when they last failed to load
}

// tlsLoaded is the material of one read of the files.
type tlsLoaded struct {
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

// newTLSFiles reads the files; it fails when they do not make a usable
// configuration, so that a server does not start with one it cannot use.
func newTLSFiles(cert, key, ca string, log *slog.Logger) (*tlsFiles, error) {
	if cert == "" || key == "" {
		return nil, fmt.Errorf("resp: TLS needs both a certificate and a key file (got %q and %q)", cert, key)
	}
	f := &tlsFiles{cert: cert, key: key, ca: ca, log: log}
	l, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(l)
	f.checked.Store(time.Now().UnixNano())
	f.config = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: f.forClient,
	}
	return f, nil
}

// paths lists the files in the order of stamps; the CA may be "".
func (f *tlsFiles) paths() [3]string { return [3]string{f.cert, f.key, f.ca} }

// stat returns the files' stamps.
func (f *tlsFiles) stat() (stamps, error) {
	var s stamps
	for i, p := range f.paths() {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return s, fmt.Errorf("resp: TLS file: %w", err)
		}
		s[i].mod, s[i].size = fi.ModTime(), fi.Size()
	}
	return s, nil
}

// load reads the files. The stamps are taken first, so that a file that
// changes while it is read shows as changed at the next check.
func (f *tlsFiles) load() (*tlsLoaded, error) {
	st, err := f.stat()
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("resp: TLS certificate %s and key %s: %w", f.cert, f.key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
	}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("resp: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("resp: TLS CA file %s holds no PEM certificate", f.ca)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &tlsLoaded{config: cfg, stamps: st}, nil
}

// reload reads the files again and, if they load, makes new connections
// use them. With onlyChanged it does nothing when their stamps are those
// of the material in use, or of an attempt that failed already.
func (f *tlsFiles) reload(onlyChanged bool) error {
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
	f.log.Info("resp: TLS certificate loaded", "cert", f.cert, "ca", f.ca)
	return nil
}

// forClient is the GetConfigForClient hook: it returns the material in
// use, after checking the files if tlsCheckInterval has passed.
func (f *tlsFiles) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	now := time.Now().UnixNano()
	if last := f.checked.Load(); now-last >= int64(tlsCheckInterval) && f.checked.CompareAndSwap(last, now) {
		if err := f.reload(true); err != nil {
			f.log.Warn("resp: TLS files changed but cannot be loaded; keeping the previous certificate", "err", err)
		}
	}
	return f.cur.Load().config, nil
}

// ReloadTLS reads the TLS certificate, key and CA files again, at once, for
// a SIGHUP handler; the server also notices changed files by itself within
// a second of the next connection. Connections made from now on use the
// new material; established ones keep theirs. When the files do not load,
// the server keeps the material it has and ReloadTLS returns the error. On
// a server without TLS it does nothing.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return nil
	}
	return s.tls.reload(false)
}
