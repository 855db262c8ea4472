package cluster

import (
	"bytes"
	"context"
	"io"
	"log"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestGossipKeyring: the keyring's primary key and the keys it accepts.
func TestGossipKeyring(t *testing.T) {
	a := bytes.Repeat([]byte{'a'}, 32)
	b := bytes.Repeat([]byte{'b'}, 16)
	secret := []byte("the cluster secret, 16+ bytes")
	for _, tc := range []struct {
		name    string
		cfg     Config
		primary []byte
		accepts [][]byte
	}{
		{"none", Config{}, nil, nil},
		{"one key", Config{GossipKey: a}, a, [][]byte{a}},
		{"a key and a further one", Config{GossipKey: a, GossipKeys: [][]byte{b}}, a, [][]byte{a, b}},
		{"the secret's", Config{ClusterSecret: secret}, derivedGossipKey(secret), [][]byte{derivedGossipKey(secret)}},
		{"the secret's and a further one", Config{ClusterSecret: secret, GossipKeys: [][]byte{b}}, derivedGossipKey(secret), [][]byte{derivedGossipKey(secret), b}},
		{"a key with the secret", Config{ClusterSecret: secret, GossipKey: a}, a, [][]byte{a, derivedGossipKey(secret)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := gossipKeyring(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.primary == nil {
				if kr != nil {
					t.Fatalf("keyring %v, want none", kr.GetKeys())
				}
				return
			}
			if !bytes.Equal(kr.GetPrimaryKey(), tc.primary) {
				t.Errorf("primary %x, want %x", kr.GetPrimaryKey(), tc.primary)
			}
			keys := kr.GetKeys()
			if len(keys) != len(tc.accepts) {
				t.Errorf("%d keys, want %d", len(keys), len(tc.accepts))
			}
			for _, k := range tc.accepts {
				found := false
				for _, have := range keys {
					found = found || bytes.Equal(have, k)
				}
				if !found {
					t.Errorf("key %x missing", k)
				}
			}
			if !bytes.Equal(gossipKey(tc.cfg), tc.primary) {
				t.Errorf("gossipKey %x, want the primary", gossipKey(tc.cfg))
			}
		})
	}
	for _, cfg := range []Config{
		{GossipKeys: [][]byte{a}},
		{GossipKey: []byte("seventeen bytes!!")},
		{GossipKey: a, GossipKeys: [][]byte{[]byte("short")}},
	} {
		kr, err := gossipKeyring(cfg)
		if err == nil {
			t.Errorf("%+v: keyring %v, want an error", cfg, kr.GetKeys())
		} else if strings.Contains(err.Error(), "aaaa") || strings.Contains(err.Error(), "short") {
			t.Errorf("the error quotes a key: %v", err)
		}
	}
}

// TestGossipKeyRotation walks the rotation of gossipKeyring's doc from key
// old to key new: a member at one step of it and a member at the next can
// join each other (memberlist's join is a push-pull of encrypted state both
// ways), and members two steps apart, with no key in common to send with,
// cannot.
func TestGossipKeyRotation(t *testing.T) {
	old := bytes.Repeat([]byte{'o'}, 32)
	new := bytes.Repeat([]byte{'n'}, 32)
	steps := []Config{
		{GossipKey: old},
		{GossipKey: old, GossipKeys: [][]byte{new}}, // 1: new installed
		{GossipKey: new, GossipKeys: [][]byte{old}}, // 2: new primary
		{GossipKey: new}, // 3: old removed
	}
	net := NewMemNetwork()
	host := 0
	member := func(t *testing.T, cfg Config) *memberlist.Memberlist {
		t.Helper()
		host++
		ip := "10.1.0." + strconv.Itoa(host)
		tr, err := net.Host(ip).Gossip(ip, 7946, nil)
		if err != nil {
			t.Fatal(err)
		}
		mc := memberlist.DefaultLocalConfig()
		mc.Name = ip
		mc.Transport = tr
		mc.Logger = log.New(io.Discard, "", 0)
		mc.TCPTimeout = time.Second
		if mc.Keyring, err = gossipKeyring(cfg); err != nil {
			t.Fatal(err)
		}
		m, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m
	}
	joins := func(t *testing.T, a, b Config) bool {
		ma, mb := member(t, a), member(t, b)
		if _, err := mb.Join([]string{ma.LocalNode().Address()}); err != nil {
			return false
		}
		// ma merges mb's state after answering it.
		deadline := time.Now().Add(2 * time.Second)
		for ma.NumMembers() != 2 || mb.NumMembers() != 2 {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}
	for i := range steps {
		for j := i; j < len(steps); j++ {
			want := j-i <= 1
			if got := joins(t, steps[i], steps[j]); got != want {
				t.Errorf("a member at step %d joining one at step %d: %v, want %v", j, i, got, want)
			}
			if got := joins(t, steps[j], steps[i]); got != want {
				t.Errorf("a member at step %d joining one at step %d: %v, want %v", i, j, got, want)
			}
		}
	}
}

// TestGossipKeyRotationCluster: members one step apart in a key rotation
// (old,new / new,old) form one cluster; a member two steps ahead (new
// only) cannot join members still at the first step.
func TestGossipKeyRotationCluster(t *testing.T) {
	old, next := bytes.Repeat([]byte{'o'}, 32), bytes.Repeat([]byte{'n'}, 32)
	keys := func(cfg Config, primary []byte, more ...[]byte) Config {
		cfg.GossipKey, cfg.GossipKeys = primary, more
		return cfg
	}
	h := newHarness(t)
	nodes := []*testNode{
		h.start("n1", keys(h.config("n1", ""), old, next)),
		h.start("n2", keys(h.config("n2", "n1"), old, next)),
		h.start("n3", keys(h.config("n3", "n2"), next, old)),
	}
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := Start(ctx, keys(h.config("n4", "n1"), next), &fakeHandler{id: "n4"}); err == nil {
		c.Close()
		t.Fatal("a member at step 3 of a rotation joined members at step 1")
	}
}
