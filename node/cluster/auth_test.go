package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHandshake runs both sides of the handshake over a pipe.
func TestHandshake(t *testing.T) {
	secret := []byte("the cluster's secret")
	for _, tc := range []struct {
		name           string
		dialer, lister []byte
		ok             bool
	}{
		{"same secret", secret, secret, true},
		{"another secret", []byte("another secret!!"), secret, false},
		{"a prefix of the secret", secret[:8], secret, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			errc := make(chan error, 1)
			go func() {
				err := acceptHandshake(b, tc.lister, newNonce())
				b.Close()
				errc <- err
			}()
			dialErr := dialHandshake(a, tc.dialer, newNonce())
			a.Close()
			acceptErr := <-errc
			if tc.ok && (dialErr != nil || acceptErr != nil) {
				t.Fatalf("dialer: %v, listener: %v; want both nil", dialErr, acceptErr)
			}
			if !tc.ok && (!errors.Is(dialErr, errBadProof) || acceptErr == nil) {
				t.Fatalf("dialer: %v, listener: %v; want errBadProof and an error", dialErr, acceptErr)
			}
		})
	}
}

// FuzzAcceptHandshake feeds the listener's handshake reader arbitrary bytes
// from a dialer: it must never panic, never read past the handshake, and
// accept exactly when the bytes carry the dialer's proof for its nonce.
func FuzzAcceptHandshake(f *testing.F) {
	secret := []byte("fuzzing secret, 16+ bytes")
	nonce := bytes.Repeat([]byte{7}, nonceSize)
	dialerNonce := bytes.Repeat([]byte{1}, nonceSize)
	valid := append(append([]byte{}, dialerNonce...), proof(secret, "client", dialerNonce, nonce)...)
	f.Add(valid)
	f.Add(append(valid, 'p'))
	f.Add([]byte("r"))
	f.Add([]byte("p\x01\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Add(append(append([]byte{}, dialerNonce...), proof(secret, "server", dialerNonce, nonce)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var out bytes.Buffer
		err := acceptHandshake(struct {
			io.Reader
			io.Writer
		}{r, &out}, secret, nonce)
		want := len(in) >= nonceSize+proofSize &&
			bytes.Equal(in[nonceSize:nonceSize+proofSize], proof(secret, "client", in[:nonceSize], nonce))
		if (err == nil) != want {
			t.Fatalf("accepted %v, want %v (err %v)", err == nil, want, err)
		}
		if consumed := len(in) - r.Len(); consumed > nonceSize+proofSize {
			t.Fatalf("read %d bytes, past the handshake", consumed)
		}
		if len(in) >= nonceSize && !bytes.Equal(out.Bytes(), append(append([]byte{}, nonce...), proof(secret, "server", in[:nonceSize], nonce)...)) {
			t.Fatalf("answered %x", out.Bytes())
		}
	})
}

// FuzzDialHandshake feeds the dialer's handshake reader arbitrary bytes
// from a listener: it must send its proof only after a valid answer.
func FuzzDialHandshake(f *testing.F) {
	secret := []byte("fuzzing secret, 16+ bytes")
	nonce := bytes.Repeat([]byte{1}, nonceSize)
	listenerNonce := bytes.Repeat([]byte{7}, nonceSize)
	f.Add(append(append([]byte{}, listenerNonce...), proof(secret, "server", nonce, listenerNonce)...))
	f.Add(append(append([]byte{}, listenerNonce...), proof(secret, "client", nonce, listenerNonce)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		err := dialHandshake(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &out}, secret, nonce)
		want := len(in) >= nonceSize+proofSize &&
			bytes.Equal(in[nonceSize:nonceSize+proofSize], proof(secret, "server", nonce, in[:nonceSize]))
		if (err == nil) != want {
			t.Fatalf("accepted %v, want %v (err %v)", err == nil, want, err)
		}
		if !want && out.Len() != nonceSize {
			t.Fatalf("sent %d bytes to a listener that did not prove the secret", out.Len())
		}
	})
}

// withSecret returns cfg with secret as its ClusterSecret.
func withSecret(cfg Config, secret []byte) Config {
	cfg.ClusterSecret = secret
	return cfg
}

// TestClusterSecret: nodes with the same secret form a cluster and forward;
// a node with another secret, or none, cannot join, and cannot open a raft
// or peer connection to a member.
func TestClusterSecret(t *testing.T) {
	h := newHarness(t)
	secret := []byte("0123456789abcdef-cluster")
	nodes := []*testNode{h.start("n1", withSecret(h.config("n1", ""), secret))}
	for _, name := range []string{"n2", "n3"} {
		nodes = append(nodes, h.start(name, withSecret(h.config(name, "n1"), secret)))
	}
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var w traceWriter
	if err := nodes[0].c.Forward(ctx, "n3", [][]byte{[]byte("whoami")}, &w); err != nil || w.String() != `bulk "n3"` {
		t.Fatalf("forward between nodes with the secret: %q, %v", w.String(), err)
	}

	for _, bad := range []struct {
		name   string
		secret []byte
	}{
		{"n4", []byte("fedcba9876543210-cluster")},
		{"n5", nil},
	} {
		short, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := Start(short, withSecret(h.config(bad.name, "n1"), bad.secret), &fakeHandler{id: bad.name})
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("%s, with secret %q, joined", bad.name, bad.secret)
		}
		// Straight to the cluster port, as raft and Forward dial it.
		host := h.net.Host(hostOf(bad.name))
		for _, proto := range []byte{protoRaft, protoPeer} {
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			conn, err := dialProto(dctx, host, bad.secret, nodes[1].c.Self().ClusterAddr, proto)
			cancel()
			if bad.secret != nil {
				if err == nil {
					conn.Close()
					t.Errorf("%s dialed %q with another secret", bad.name, proto)
				}
				continue
			}
			// Without a secret the dial cannot tell; the listener takes
			// what follows for a TLS ClientHello, and closes the
			// connection.
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			expectClosed(t, conn, append(commandFrame("whoami"), make([]byte, nonceSize+proofSize)...))
		}
	}
	if served := nodes[1].h.servedCount(); served != 0 {
		t.Errorf("n2 served %d commands from strangers", served)
	}
	waitConverged(t, 5*time.Second, nodes, "n1", "n2", "n3")
	// A fresh deadline: on a MemNetwork pipe, which buffers nothing, a TLS
	// handshake that fails waits out its deadline (both ends write their
	// alert or flight at once), so the strangers took seconds.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[1].c.Forward(ctx, "n3", [][]byte{[]byte("whoami")}, &traceWriter{}); err != nil {
		t.Fatalf("forward after the strangers: %v", err)
	}
	if logs := h.logs.String(); strings.Contains(logs, string(secret)) {
		t.Error("the logs hold the secret")
	} else if !strings.Contains(logs, "handshake failed") {
		t.Error("no handshake failure was logged")
	}
}

// TestClusterSecretLoopback: over real sockets, three nodes with the secret
// converge and forward, and a raw TCP client that sends 'r' or 'p' to the
// cluster port without the handshake is closed, serving nothing.
func TestClusterSecretLoopback(t *testing.T) {
	restore := handshakeTimeout
	handshakeTimeout = 300 * time.Millisecond
	t.Cleanup(func() { handshakeTimeout = restore })
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs:\n%s", logs.String())
		}
	})
	secret := []byte("loopback secret, 16+ bytes")
	nodes := startLoopback(t, 3, logs, secret)
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	target := nodes[1].c.Self().ClusterAddr
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"r alone", []byte{protoRaft}},
		{"p alone", []byte{protoPeer}},
		{"r and a raft request", append([]byte{protoRaft}, bytes.Repeat([]byte{0x81}, 100)...)},
		{"p and a command", append([]byte{protoPeer}, commandFrame("whoami")...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			expectClosed(t, conn, tc.send)
		})
	}
	if served := nodes[1].h.servedCount(); served != 0 {
		t.Errorf("n2 served %d commands from a raw client", served)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var w traceWriter
	if err := nodes[0].c.Forward(ctx, "n2", [][]byte{[]byte("whoami")}, &w); err != nil || w.String() != `bulk "n2"` {
		t.Fatalf("forward after the raw clients: %q, %v", w.String(), err)
	}
	waitConverged(t, 5*time.Second, nodes, "n1", "n2", "n3")
	if st := nodes[0].c.Status(); !st.HasQuorum || st.Voters != 3 {
		t.Errorf("status after the raw clients: %+v", st)
	}
	if strings.Contains(logs.String(), string(secret)) {
		t.Error("the logs hold the secret")
	}
}

// expectClosed writes send on conn and checks that the other end closes
// the connection, having sent nothing but a handshake answer.
func expectClosed(t *testing.T, conn net.Conn, send []byte) {
	t.Helper()
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	go conn.Write(send) // may fail once closed; net.Pipe blocks until read
	got, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, io.ErrClosedPipe) && !isReset(err) {
		t.Fatalf("after %d bytes: %v, want the connection closed", len(got), err)
	}
	if len(got) > nonceSize+proofSize {
		t.Fatalf("received %d bytes, more than a handshake answer", len(got))
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// commandFrame is a peer msgCommand frame with id 1 carrying args.
func commandFrame(args ...string) []byte {
	var payload []byte
	payload = binary.AppendUvarint(payload, uint64(len(args)))
	for _, a := range args {
		payload = binary.AppendUvarint(payload, uint64(len(a)))
		payload = append(payload, a...)
	}
	frame := []byte{msgCommand, 0, 0, 0, 1}
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	return append(frame, payload...)
}

func (f *fakeHandler) servedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}
