package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tlsCheckInterval is how often, at most, a new connection looks at the
// certificate files' modification times to see whether they were rotated.
const tlsCheckInterval = time.Second

// tlsFiles is the cluster port's certificate material, read from PEM files
// and read again when they change: each handshake uses the files as they
// were last read, and one handshake a second at most checks them first. A
// rotation that cannot be read (a key that does not match, a file half
// written) is logged and the previous material kept; the next check tries
// again. (wire/resp does the same for the client ports.)
type tlsFiles struct {
	files TLSFiles
	log   *slog.Logger
	// server is handed to tls.Server: it takes the material loaded last
	// for each handshake.
	server *tls.Config

	cur     atomic.Pointer[tlsLoaded]
	checked atomic.Int64 // Unix ns of the last look at the files

	mu     sync.Mutex // one reload at a time
	failed tlsStamps  // the files' stamps when they last failed to load
}

// tlsLoaded is the material of one read of the files.
type tlsLoaded struct {
	server, client *tls.Config
	stamps         tlsStamps
}

// tlsStamps identify versions of the certificate, key and CA files: a file
// rewritten, or a symlink swapped to a new one (as Kubernetes updates a
// mounted secret), changes its modification time or size.
type tlsStamps [3]struct {
	mod  time.Time
	size int64
}

// newTLSFiles reads the files; it fails when they do not make a usable
// configuration, so that a node does not start with one it cannot use.
func newTLSFiles(files TLSFiles, log *slog.Logger) (*tlsFiles, error) {
	if files.CertFile == "" || files.KeyFile == "" || files.CAFile == "" {
		return nil, fmt.Errorf("cluster port TLS needs a certificate, a key and a CA file (got %q, %q and %q)",
			files.CertFile, files.KeyFile, files.CAFile)
	}
	f := &tlsFiles{files: files, log: log}
	l, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(l)
	f.checked.Store(time.Now().UnixNano())
	f.server = tlsBase()
	f.server.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return f.current().server, nil }
	return f, nil
}

func (f *tlsFiles) serverConfig() *tls.Config { return f.server }
func (f *tlsFiles) clientConfig() *tls.Config { return f.current().client }

func (f *tlsFiles) paths() [3]string {
	return [3]string{f.files.CertFile, f.files.KeyFile, f.files.CAFile}
}

func (f *tlsFiles) stat() (tlsStamps, error) {
	var s tlsStamps
	for i, p := range f.paths() {
		fi, err := os.Stat(p)
		if err != nil {
			return s, fmt.Errorf("cluster port TLS file: %w", err)
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
	pair, err := tls.LoadX509KeyPair(f.files.CertFile, f.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster port TLS certificate %s and key %s: %w", f.files.CertFile, f.files.KeyFile, err)
	}
	pem, err := os.ReadFile(f.files.CAFile)
	if err != nil {
		return nil, fmt.Errorf("cluster port TLS CA file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster port TLS CA file %s holds no PEM certificate", f.files.CAFile)
	}
	// The node's own certificate must pass the checks its peers will make,
	// or it would start and then fail every connection.
	if err := verifyMember(pair.Leaf, pair.Certificate[1:], roots, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, fmt.Errorf("cluster port TLS certificate %s: %w", f.files.CertFile, err)
	}
	if err := verifyMember(pair.Leaf, pair.Certificate[1:], roots, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, fmt.Errorf("cluster port TLS certificate %s: %w", f.files.CertFile, err)
	}

	server := tlsBase()
	server.Certificates = []tls.Certificate{pair}
	server.ClientCAs = roots
	server.ClientAuth = tls.RequireAndVerifyClientCert

	client := tlsBase()
	client.Certificates = []tls.Certificate{pair}
	// Members dial the addresses they advertise, which certificates do
	// not name: VerifyConnection checks the chain without the host name
	// (it runs whatever InsecureSkipVerify says).
	client.InsecureSkipVerify = true
	client.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errNoPeerCert
		}
		var rest [][]byte
		for _, c := range cs.PeerCertificates[1:] {
			rest = append(rest, c.Raw)
		}
		return verifyMember(cs.PeerCertificates[0], rest, roots, x509.ExtKeyUsageServerAuth)
	}
	return &tlsLoaded{server: server, client: client, stamps: st}, nil
}

// verifyMember checks that leaf, with the intermediates in rest (DER),
// chains to roots for usage, at the current time.
func verifyMember(leaf *x509.Certificate, rest [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if leaf == nil {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, der := range rest {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// current returns the material in use, after checking the files if
// tlsCheckInterval has passed.
func (f *tlsFiles) current() *tlsLoaded {
	now := time.Now().UnixNano()
	if last := f.checked.Load(); now-last >= int64(tlsCheckInterval) && f.checked.CompareAndSwap(last, now) {
		if err := f.reload(true); err != nil {
			f.log.Warn("cluster port: TLS files changed but cannot be loaded; keeping the previous certificate", "err", err)
		}
	}
	return f.cur.Load()
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
	f.failed = tlsStamps{}
	f.log.Info("cluster port: TLS certificate loaded", "cert", f.files.CertFile, "ca", f.files.CAFile)
	return nil
}
