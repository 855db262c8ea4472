package resp

import (
	"crypto/tls"
	"log/slog"

	"github.com/sluicedb/sluice/wire/internal/tlsconf"
)

// TLS timing, as the FlatBuffers port has it (see tlsconf).
const (
	tlsCheckInterval = tlsconf.CheckInterval
	handshakeTimeout = tlsconf.HandshakeTimeout
)

// tlsFiles is a server's TLS material, read from PEM files and read again
// when they change (tlsconf.Files), with the configuration connections are
// made with.
type tlsFiles struct {
	*tlsconf.Files
	config *tls.Config
}

// newTLSFiles reads the files; it fails when they do not make a usable
// configuration, so that a server does not start with one it cannot use.
func newTLSFiles(cert, key, ca string, log *slog.Logger) (*tlsFiles, error) {
	f, err := tlsconf.Load("resp", cert, key, ca, log)
	if err != nil {
		return nil, err
	}
	return &tlsFiles{Files: f, config: f.Config()}, nil
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
	return s.tls.Reload()
}
