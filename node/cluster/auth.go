package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// With Config.ClusterSecret set, every connection to the cluster port opens
// (inside TLS, see tls.go) with a mutual challenge–response before its
// protocol byte:
//
//	dialer   → listener  nonceD:32
//	listener → dialer    nonceL:32 | HMAC-SHA256(secret, "server" | nonceD | nonceL)
//	dialer   → listener  HMAC-SHA256(secret, "client" | nonceD | nonceL)
//	dialer   → listener  protocol byte, as without a secret
//
// Each side proves it holds the secret over a nonce it did not choose, so
// neither proof can be replayed on another connection, and the labels keep
// a listener's proof from serving as a dialer's. The dialer checks the
// listener's proof before it sends anything else, and the listener checks
// the dialer's before it reads the protocol byte: a process without the
// secret neither reaches raft or the peer protocol nor learns anything of
// them. It costs a round trip per new connection; connections are pooled.
//
// The handshake authenticates a connection when it opens; it does not
// encrypt or sign what follows. That is TLS's part (tls.go): with a secret,
// every connection is TLS 1.3 first, with a key derived from the secret
// unless the node has certificates, and this handshake runs inside it.
const (
	nonceSize = 32
	proofSize = sha256.Size
)

// handshakeTimeout bounds the whole opening of an accepted connection (the
// handshake and the protocol byte), and the handshake of a dial whose
// context has no deadline. A variable so tests can shorten it.
var handshakeTimeout = 5 * time.Second

// Handshake errors. None of them says anything of the secret.
var (
	errBadProof = errors.New("cluster port handshake: proof does not match (another cluster secret?)")
)

// proof is HMAC-SHA256(secret, label | dialerNonce | listenerNonce).
func proof(secret []byte, label string, dialerNonce, listenerNonce []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write(dialerNonce)
	m.Write(listenerNonce)
	return m.Sum(nil)
}

// acceptHandshake runs the listener's side over rw with its nonce: it
// reads the dialer's nonce, answers with nonce and its proof, and reads and
// checks the dialer's proof. It returns nil only when the dialer proved it
// holds secret.
func acceptHandshake(rw io.ReadWriter, secret, nonce []byte) error {
	var dialerNonce [nonceSize]byte
	if _, err := io.ReadFull(rw, dialerNonce[:]); err != nil {
		return err
	}
	answer := append(nonce[:nonceSize:nonceSize], proof(secret, "server", dialerNonce[:], nonce)...)
	if _, err := rw.Write(answer); err != nil {
		return err
	}
	var got [proofSize]byte
	if _, err := io.ReadFull(rw, got[:]); err != nil {
		return err
	}
	if !hmac.Equal(got[:], proof(secret, "client", dialerNonce[:], nonce)) {
		return errBadProof
	}
	return nil
}

// dialHandshake runs the dialer's side over rw with its nonce: it sends
// the nonce, reads and checks the listener's answer, and sends its proof.
// It returns nil only when the listener proved it holds secret, and sends
// no proof otherwise.
func dialHandshake(rw io.ReadWriter, secret, nonce []byte) error {
	if _, err := rw.Write(nonce[:nonceSize]); err != nil {
		return err
	}
	var answer [nonceSize + proofSize]byte
	if _, err := io.ReadFull(rw, answer[:]); err != nil {
		return err
	}
	listenerNonce := answer[:nonceSize]
	if !hmac.Equal(answer[nonceSize:], proof(secret, "server", nonce[:nonceSize], listenerNonce)) {
		return errBadProof
	}
	_, err := rw.Write(proof(secret, "client", nonce[:nonceSize], listenerNonce))
	return err
}

// newNonce returns nonceSize random bytes.
func newNonce() []byte {
	b := make([]byte, nonceSize)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// authenticateAccepted runs the listener's handshake on conn when secret is
// set. The caller has set conn's deadline.
func authenticateAccepted(conn net.Conn, secret []byte) error {
	if len(secret) == 0 {
		return nil
	}
	return acceptHandshake(conn, secret, newNonce())
}

// authenticateDialed runs the dialer's handshake on conn when secret is
// set. The caller has set conn's deadline.
func authenticateDialed(conn net.Conn, secret []byte) error {
	if len(secret) == 0 {
		return nil
	}
	return dialHandshake(conn, secret, newNonce())
}

// gossipKey is cfg.GossipKey, or when it is empty and ClusterSecret is set,
// the key derived from the secret (derivedGossipKey), so that a process
// without it cannot join gossip (where the leader would give it slots) any
// more than raft.
func gossipKey(cfg Config) []byte {
	if len(cfg.GossipKey) > 0 || len(cfg.ClusterSecret) == 0 {
		return cfg.GossipKey
	}
	return derivedGossipKey(cfg.ClusterSecret)
}

// derivedGossipKey is HMAC-SHA256(secret, "gossip"): an AES-256 key that
// only holders of the secret know.
func derivedGossipKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("gossip"))
	return m.Sum(nil)
}

// gossipKeyring is the keyring gossip runs with (memberlist.Config.Keyring):
// gossipKey(cfg) encrypts, and it, cfg.GossipKeys and, with ClusterSecret,
// the key derived from the secret all decrypt. memberlist tries every key
// of the keyring on what it receives and encrypts with the primary one,
// which is what lets a key rotate without a gap:
//
//  1. every node gets the new key as a further key (GossipKeys), its old
//     one still primary: all still send with the old key, and all accept
//     both;
//  2. every node makes the new key primary and keeps the old one as a
//     further key: nodes switched send with the new key, which every node
//     accepts since step 1, and still accept the old one from nodes not yet
//     switched;
//  3. every node drops the old key.
//
// Each step is done on every node (a rolling restart, with sluice's
// --gossip-key new,old list) before the next begins. It returns nil, and no
// error, when gossip is not encrypted.
func gossipKeyring(cfg Config) (*memberlist.Keyring, error) {
	primary := gossipKey(cfg)
	if len(primary) == 0 {
		if len(cfg.GossipKeys) > 0 {
			return nil, errors.New("cluster: GossipKeys without GossipKey (or ClusterSecret) to encrypt with")
		}
		return nil, nil
	}
	keys := slices.Clone(cfg.GossipKeys)
	if len(cfg.ClusterSecret) > 0 && len(cfg.GossipKey) > 0 {
		keys = append(keys, derivedGossipKey(cfg.ClusterSecret))
	}
	kr, err := memberlist.NewKeyring(keys, primary)
	if err != nil {
		// memberlist's errors name sizes, never key bytes.
		return nil, fmt.Errorf("cluster: gossip key: %w", err)
	}
	return kr, nil
}
