package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"
)

// Encryption of the cluster port. Every connection to it, raft's and the
// peer protocol's alike, is TLS 1.3 as soon as the node has something to
// authenticate its peers with, in one of two ways:
//
//   - Certificates (WithTLS, sluice's --cluster-tls-cert, --cluster-tls-key
//     and --cluster-tls-ca): every member presents a certificate that the
//     cluster's CA signed, for both server and client authentication, and
//     checks the other's against that CA, in both directions (mutual TLS).
//     Host names are not checked, since members dial each other by the
//     addresses they advertise: any certificate the CA signed is a member,
//     so the CA must sign for this cluster only.
//   - Config.ClusterSecret alone: every member presents a self-signed
//     certificate for one Ed25519 key derived from the secret with HKDF-
//     SHA256 (RFC 5869), and accepts only a peer that presents that same
//     public key. TLS's CertificateVerify proves that the peer holds the
//     private key, that is the secret: a pinned key, as SSH's known hosts,
//     with TLS 1.3's ephemeral key exchange.
//
// With the secret set, the HMAC handshake of auth.go then runs inside TLS,
// and the protocol byte after it. Both layers are applied in the one dialer
// (dialProto) and the one accept path (route) that raft and Forward share,
// so neither can skip them. A passive observer sees TLS records only; an
// active one who lacks the certificate (or the secret) fails the handshake
// before any byte of raft or the peer protocol flows. TLS 1.3's ephemeral
// keys give forward secrecy: a secret or key learned later does not decrypt
// traffic recorded before. Without certificates or a secret, the cluster
// port is plaintext and unauthenticated, for private networks only.
//
// Every member must be configured alike: a member with certificates and
// one with only the secret cannot talk.

// tlsSource hands out the TLS configurations of the cluster port, one for
// each side of a connection.
type tlsSource interface {
	serverConfig() *tls.Config
	clientConfig() *tls.Config
}

// TLSFiles names the PEM files of a node's mutual TLS on the cluster port.
type TLSFiles struct {
	// CertFile is the certificate chain the node presents, to peers that
	// dial it and to peers it dials: it needs both the serverAuth and the
	// clientAuth extended key usages (or none).
	CertFile string
	// KeyFile is the certificate's private key.
	KeyFile string
	// CAFile is the bundle of CAs that sign the members' certificates.
	// Every certificate one of them signed is accepted as a member.
	CAFile string
}

// WithTLS returns n with mutual TLS on the cluster port, which a node given
// it as Config.Network then speaks on every raft and peer connection, and
// requires of every peer. Gossip is not affected (see Config.GossipKey):
// without a gossip key, anyone who reaches the gossip port can still join
// membership, and be given slots that nobody can reach.
//
// The files are read now and read again when they change (checked at most
// once a second, when a connection opens), so certificates rotate without a
// restart; a rotation that does not load is logged to logger (nil means
// slog.Default()) and the previous material kept. Established connections
// keep the certificates they were made with.
func WithTLS(n Network, files TLSFiles, logger *slog.Logger) (Network, error) {
	if logger == nil {
		logger = slog.Default()
	}
	f, err := newTLSFiles(files, logger)
	if err != nil {
		return nil, err
	}
	return &tlsNetwork{Network: n, files: f}, nil
}

// tlsNetwork is a Network whose cluster port speaks TLS with its files. It
// only carries them: dialProto and route apply them.
type tlsNetwork struct {
	Network
	files *tlsFiles
}

func (t *tlsNetwork) clusterTLS() tlsSource { return t.files }

// tlsFor returns how the cluster port of a node with Network n and secret
// authenticates and encrypts: n's certificates when it has any, else keys
// derived from secret, else nil (plaintext).
func tlsFor(n Network, secret []byte) (tlsSource, error) {
	if t, ok := n.(interface{ clusterTLS() tlsSource }); ok {
		return t.clusterTLS(), nil
	}
	if len(secret) > 0 {
		return secretTLSFor(secret)
	}
	return nil, nil
}

// secureAccepted runs the listener's side of the cluster port's TLS on conn
// when the node has one (see tlsFor), and returns the connection to use from
// then on: conn itself when it has none. The caller has set conn's
// deadline, and closes conn on error.
func secureAccepted(conn net.Conn, n Network, secret []byte) (net.Conn, error) {
	src, err := tlsFor(n, secret)
	if src == nil || err != nil {
		return conn, err
	}
	tc := tls.Server(conn, src.serverConfig())
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tc, raw: conn}, nil
}

// secureDialed runs the dialer's side, as secureAccepted the listener's.
func secureDialed(ctx context.Context, conn net.Conn, n Network, secret []byte) (net.Conn, error) {
	src, err := tlsFor(n, secret)
	if src == nil || err != nil {
		return conn, err
	}
	tc := tls.Client(conn, src.clientConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tc, raw: conn}, nil
}

// tlsConn is a cluster port connection over TLS. Close closes the socket
// without TLS's close_notify alert: the protocols inside frame their own
// messages, and the alert's write could block Close for seconds on a peer
// that does not read (or forever on a MemNetwork pipe).
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

func (c *tlsConn) Close() error { return c.raw.Close() }

// errNoPeerCert: the peer sent no certificate (tls.Config already requires
// one; this guards VerifyConnection's own assumptions).
var errNoPeerCert = errors.New("cluster port TLS: the peer presented no certificate")

// tlsBase is what every configuration of the cluster port shares: TLS 1.3
// only, no session tickets (connections are long-lived and pooled, and a
// resumed session would skip the checks of the peer's certificate), and
// full-size records from the start (the peer protocol batches its frames,
// and replication streams are bulk: small first records would only cost
// writes).
func tlsBase() *tls.Config {
	return &tls.Config{
		MinVersion:                  tls.VersionTLS13,
		SessionTicketsDisabled:      true,
		DynamicRecordSizingDisabled: true,
	}
}

// secretTLS is the TLS of a cluster with a secret and no certificates.
type secretTLS struct {
	server, client *tls.Config
}

func (s *secretTLS) serverConfig() *tls.Config { return s.server }
func (s *secretTLS) clientConfig() *tls.Config { return s.client }

// secretKeyInfo labels the HKDF derivation of the cluster port's key, so
// that the same secret gives unrelated keys for other uses (the gossip key
// is an HMAC with another label).
const secretKeyInfo = "sluice cluster port TLS Ed25519 key v1"

// newSecretTLS derives the cluster port's key from secret and builds both
// configurations around a self-signed certificate for it.
func newSecretTLS(secret []byte) (*secretTLS, error) {
	seed, err := hkdf.Key(sha256.New, secret, nil, secretKeyInfo, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice cluster member"},
		// The certificate is never checked against a CA or a clock, only
		// its key against the derived one: it does not expire.
		NotBefore:   time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errNoPeerCert
		}
		k, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
		if !ok || !bytes.Equal(k, pub) {
			return errors.New("cluster port TLS: the peer's key is not the cluster secret's (another cluster secret?)")
		}
		return nil
	}
	server := tlsBase()
	server.Certificates = []tls.Certificate{cert}
	server.ClientAuth = tls.RequireAnyClientCert
	server.VerifyConnection = verify
	client := tlsBase()
	client.Certificates = []tls.Certificate{cert}
	// No CA signs the certificate: VerifyConnection checks the key instead
	// (it runs whatever InsecureSkipVerify says).
	client.InsecureSkipVerify = true
	client.VerifyConnection = verify
	return &secretTLS{server: server, client: client}, nil
}

// secretTLSCache holds the configurations of the last secret asked for,
// keyed by the secret's SHA-256: a node has one secret, and deriving it
// again for every connection would cost a certificate signature each.
var secretTLSCache struct {
	mu  sync.Mutex
	sum [sha256.Size]byte
	tls *secretTLS
}

// secretTLSFor returns the configurations of secret.
func secretTLSFor(secret []byte) (tlsSource, error) {
	sum := sha256.Sum256(secret)
	c := &secretTLSCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls == nil || c.sum != sum {
		t, err := newSecretTLS(secret)
		if err != nil {
			return nil, fmt.Errorf("cluster port TLS: deriving the key: %w", err)
		}
		c.sum, c.tls = sum, t
	}
	return c.tls, nil
}
