package main

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"

	"github.com/sluicedb/sluice/node/cluster"
)

// parseGossipKeys reads --gossip-key: "" (no key), one key, or a
// comma-separated list of keys for a rotation, the first of which encrypts
// and all of which decrypt. Each is 16, 24 or 32 bytes in standard base64.
// Errors never quote v: it holds secrets.
func parseGossipKeys(v string) ([][]byte, error) {
	if v == "" {
		return nil, nil
	}
	var keys [][]byte
	for i, s := range strings.Split(v, ",") {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			if strings.Contains(v, ",") {
				return nil, errors.New("key " + itoa(i+1) + " of the list: want 16, 24 or 32 bytes in base64")
			}
			return nil, errors.New("want 16, 24 or 32 bytes in base64 (or a comma-separated list of such keys)")
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// clusterNetwork is the cluster's Network with the --cluster-tls-* files,
// or nil (the host's sockets, plaintext unless --cluster-secret) when none
// is set.
func clusterNetwork(o options, log *slog.Logger) (cluster.Network, error) {
	if o.clusterTLSCert == "" && o.clusterTLSKey == "" && o.clusterTLSCA == "" {
		return nil, nil
	}
	return cluster.WithTLS(cluster.TCPNetwork{}, cluster.TLSFiles{
		CertFile: o.clusterTLSCert, KeyFile: o.clusterTLSKey, CAFile: o.clusterTLSCA,
	}, log)
}
