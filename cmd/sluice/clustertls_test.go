package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseGossipKeys(t *testing.T) {
	k16 := bytes.Repeat([]byte{1}, 16)
	k32 := bytes.Repeat([]byte{2}, 32)
	b := base64.StdEncoding.EncodeToString
	o, _, err := loadOptions([]string{"--gossip-key", b(k32) + ", " + b(k16)}, nil)
	if err != nil || !bytes.Equal(o.gossipKey, k32) || len(o.gossipKeys) != 1 || !bytes.Equal(o.gossipKeys[0], k16) {
		t.Fatalf("a list: key %x, further %x, %v", o.gossipKey, o.gossipKeys, err)
	}
	o, _, err = loadOptions([]string{"--gossip-key", b(k16)}, nil)
	if err != nil || !bytes.Equal(o.gossipKey, k16) || len(o.gossipKeys) != 0 {
		t.Fatalf("one key: key %x, further %x, %v", o.gossipKey, o.gossipKeys, err)
	}
	o, _, err = loadOptions(nil, nil)
	if err != nil || o.gossipKey != nil || o.gossipKeys != nil {
		t.Fatalf("no key: key %x, further %x, %v", o.gossipKey, o.gossipKeys, err)
	}
	for _, tc := range []struct{ v, want string }{
		{"hunter2", "--gossip-key: want 16, 24 or 32 bytes in base64 (or a comma-separated list of such keys)"},
		{b(k16) + ",hunter2", "--gossip-key: key 2 of the list: want 16, 24 or 32 bytes in base64"},
		{b(k16) + ",", "--gossip-key: key 2 of the list: want 16, 24 or 32 bytes in base64"},
	} {
		_, _, err := loadOptions([]string{"--gossip-key", tc.v}, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("--gossip-key %q: %v, want %q", tc.v, err, tc.want)
		}
	}
}

// FuzzParseGossipKeys: any value parses to keys of valid sizes, or to an
// error that quotes nothing of it.
func FuzzParseGossipKeys(f *testing.F) {
	f.Add("")
	f.Add("AQEBAQEBAQEBAQEBAQEBAQ==")
	f.Add("AQEBAQEBAQEBAQEBAQEBAQ==,AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=")
	f.Add(",,")
	f.Add("hunter2, AQEBAQEBAQEBAQEBAQEBAQ==")
	msg := regexp.MustCompile(`^(want 16, 24 or 32 bytes in base64 \(or a comma-separated list of such keys\)|key [0-9]+ of the list: want 16, 24 or 32 bytes in base64)$`)
	f.Fuzz(func(t *testing.T, v string) {
		keys, err := parseGossipKeys(v)
		if err != nil {
			if keys != nil || !msg.MatchString(err.Error()) {
				t.Fatalf("%q: %v, %x", v, err, keys)
			}
			return
		}
		if (v == "") != (len(keys) == 0) || (v != "" && len(keys) != strings.Count(v, ",")+1) {
			t.Fatalf("%q: %d keys", v, len(keys))
		}
		for _, k := range keys {
			if n := len(k); n != 16 && n != 24 && n != 32 {
				t.Fatalf("%q: a key of %d bytes", v, n)
			}
		}
	})
}

// writeClusterPKI writes a CA and a certificate for each name (serverAuth
// and clientAuth) to dir, and returns the CA file and each name's cert and
// key files.
func writeClusterPKI(t *testing.T, dir string, names ...string) (ca string, certs, keys []string) {
	t.Helper()
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cluster CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	ca = filepath.Join(dir, "ca.pem")
	write(ca, "CERTIFICATE", caDER)
	for i, name := range names {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		certs = append(certs, filepath.Join(dir, name+".pem"))
		keys = append(keys, filepath.Join(dir, name+"-key.pem"))
		write(certs[i], "CERTIFICATE", der)
		write(keys[i], "PRIVATE KEY", kder)
	}
	return ca, certs, keys
}

// TestClusterTLSFlags runs two sluice processes with --cluster-tls-* and a
// gossip key rotation list: they form a cluster and forward commands. A
// node given only some of the files does not start.
func TestClusterTLSFlags(t *testing.T) {
	bin := buildSluice(t)
	dir := t.TempDir()
	ca, certs, keys := writeClusterPKI(t, dir, "a", "b")
	gossipKeys := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "," +
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 16))

	out, err := exec.Command(bin, "--port", freePort(t), "--admin-port", "0", "--fb-port", "0",
		"--gossip-port", freePort(t), "--cluster-port", freePort(t),
		"--cluster-tls-cert", certs[0], "--cluster-tls-key", keys[0]).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cluster port TLS needs a certificate, a key and a CA file") {
		t.Errorf("a node with no --cluster-tls-ca: %v\n%s", err, out)
	}

	type proc struct {
		port   string
		gossip string
		logs   bytes.Buffer
	}
	var procs []*proc
	for i := range 2 {
		p := &proc{port: freePort(t), gossip: freePort(t)}
		args := []string{"--port", p.port, "--admin-port", "0", "--fb-port", "0",
			"--node-name", "node-" + strconv.Itoa(i),
			"--gossip-port", p.gossip, "--cluster-port", freePort(t),
			"--cluster-tls-cert", certs[i], "--cluster-tls-key", keys[i], "--cluster-tls-ca", ca,
			"--gossip-key", gossipKeys}
		if i > 0 {
			args = append(args, "--join", "127.0.0.1:"+procs[0].gossip)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &p.logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("node %d's log:\n%s", i, p.logs.String())
			}
		})
		procs = append(procs, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := make([]*redis.Client, len(procs))
	for i, p := range procs {
		clients[i] = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + p.port, MaxRetries: -1})
		defer clients[i].Close()
	}
	for {
		info, _ := clients[1].Info(ctx, "cluster").Result()
		if strings.Contains(info, "cluster_known_nodes:2") && strings.Contains(info, "cluster_quorum:yes") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no cluster of 2 with quorum; INFO cluster:\n%s", info)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// A cluster just formed may answer TRYAGAIN (or CLUSTERDOWN) while its
	// placement settles: retry until the deadline.
	retry := func(what string, do func() error) {
		t.Helper()
		for {
			err := do()
			if err == nil {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for i := range 20 {
		key := fmt.Sprintf("key-%d", i)
		retry("SET "+key, func() error { return clients[0].Set(ctx, key, "value", 0).Err() })
		retry("GET "+key+" on the other node", func() error {
			v, err := clients[1].Get(ctx, key).Result()
			if err == nil && v != "value" {
				err = fmt.Errorf("got %q", v)
			}
			return err
		})
	}
	info, _ := clients[0].Info(ctx, "cluster").Result()
	if strings.Contains(info, "cluster_forwarded_commands:0\r") {
		t.Errorf("nothing was forwarded:\n%s", info)
	}
}
