package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/store"
)

// options are the settings of the sluice binary once flags, environment and
// config file are merged.
type options struct {
	bind            string
	port            int
	fbPort          int // 0: no FlatBuffers listener
	eventLoops      int // 0: resp's default
	adminPort       int // 0: no admin listener
	nodeName        string
	maxMemory       int64
	maxMemoryPolicy string
	requirePass     string
	maxClients      int
	timeout         time.Duration
	protoMaxBulkLen int64
	logFormat       string
	logLevel        slog.Level
	config          string

	gossipPort    int
	clusterPort   int
	join          []string
	advertise     string
	announce      string // RESP host:port told to clients; "" derives it
	announceFB    string // FlatBuffers host:port told to clients; "" derives it
	dataDir       string
	replicas      int
	redirect      string
	replication   string
	replTimeout   time.Duration
	gossipKey     []byte
	clusterSecret []byte
	aclFile       string
	tlsPort       int
	fbTLSPort     int // 0: no FlatBuffers listener over TLS
	tlsCert       string
	tlsKey        string
	tlsCA         string
	protectedMode bool

	// Cluster security beyond the secret: further gossip keys (a
	// rotation) and the cluster port's mutual TLS files.
	gossipKeys     [][]byte
	clusterTLSCert string
	clusterTLSKey  string
	clusterTLSCA   string
}

// An option is one setting, known by the same name as a flag (--name), an
// environment variable (SLUICE_NAME, see envName) and a config-file directive.
type option struct {
	name  string
	def   string // the default, in the syntax the option accepts
	usage string
	set   func(o *options, v string) error
}

// optionTable lists every setting once: parsing, precedence, --help and the
// README's table all come from it.
var optionTable = []option{
	{"bind", "127.0.0.1", "address to listen on for clients; 0.0.0.0 or :: for every interface",
		func(o *options, v string) error { o.bind = v; return checkHost(v) }},
	{"port", "6379", "RESP (Redis protocol) port",
		func(o *options, v string) (err error) { o.port, err = parsePort(v, false); return }},
	{"fb-port", "6380", "FlatBuffers port for batched hot reads (GET, CACHE.GET, RL.TAKE); 0 turns it off",
		func(o *options, v string) (err error) { o.fbPort, err = parsePort(v, true); return }},
	{"admin-port", "9121", "HTTP port for /metrics, /healthz and /readyz; 0 turns it off",
		func(o *options, v string) (err error) { o.adminPort, err = parsePort(v, true); return }},
	{"node-name", "", "name of this node; a random id when empty",
		func(o *options, v string) error { o.nodeName = v; return nil }},
	{"maxmemory", "0", "memory limit for keys and values, in bytes or with a unit (100mb, 1gb); 0 means no limit",
		func(o *options, v string) (err error) { o.maxMemory, err = parseSize(v); return }},
	{"maxmemory-policy", "allkeys-lfu", "what to evict at the memory limit: allkeys-lfu, allkeys-lru, allkeys-random, volatile-lfu, volatile-lru, volatile-random, volatile-ttl or noeviction",
		func(o *options, v string) error {
			o.maxMemoryPolicy = strings.ToLower(v)
			if _, err := store.ParsePolicy(o.maxMemoryPolicy); err != nil {
				return fmt.Errorf("%q: %w", v, err)
			}
			return nil
		}},
	{"requirepass", "", "password clients must send with AUTH; empty means no password",
		func(o *options, v string) error { o.requirePass = v; return nil }},
	{"event-loops", "0", "event loops serving plaintext RESP clients (on Linux); 0: one per core Sluice may use (GOMAXPROCS)",
		func(o *options, v string) (err error) { o.eventLoops, err = parseInt(v, 0, 1024); return }},
	{"maxclients", "10000", "most client connections served at once",
		func(o *options, v string) (err error) { o.maxClients, err = parseInt(v, 1, 1<<30); return }},
	{"timeout", "0", "close a client connection after this many idle seconds; 0 means never",
		func(o *options, v string) error {
			s, err := parseInt(v, 0, 1<<31)
			o.timeout = time.Duration(s) * time.Second
			return err
		}},
	{"proto-max-bulk-len", "512mb", "largest string a client may send, in bytes or with a unit; at least 1mb",
		func(o *options, v string) (err error) {
			o.protoMaxBulkLen, err = parseSize(v)
			if err == nil && o.protoMaxBulkLen < 1<<20 {
				err = fmt.Errorf("%q: must be at least 1mb", v)
			}
			return
		}},
	{"log-format", "text", "log format: text or json",
		func(o *options, v string) error {
			o.logFormat = v
			if v != "text" && v != "json" {
				return fmt.Errorf("%q: want text or json", v)
			}
			return nil
		}},
	{"log-level", "info", "least severe level logged: debug, info, warn or error",
		func(o *options, v string) error {
			if err := o.logLevel.UnmarshalText([]byte(v)); err != nil {
				return fmt.Errorf("%q: want debug, info, warn or error", v)
			}
			return nil
		}},
	{"config", "", "config file in redis.conf syntax (name value lines, # comments); flags and environment override it",
		func(o *options, v string) error { o.config = v; return nil }},
	{"gossip-port", "7946", "gossip (memberlist) port, TCP and UDP, on --bind",
		func(o *options, v string) (err error) { o.gossipPort, err = parsePort(v, true); return }},
	{"cluster-port", "7947", "cluster port (raft, forwarding) on --bind",
		func(o *options, v string) (err error) { o.clusterPort, err = parsePort(v, true); return }},
	{"join", "", "gossip addresses host:port of existing members, comma-separated (DNS names are resolved); empty starts a new cluster",
		func(o *options, v string) error {
			o.join = nil
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					if _, _, err := net.SplitHostPort(a); err != nil {
						return fmt.Errorf("%q: want host:port", a)
					}
					o.join = append(o.join, a)
				}
			}
			return nil
		}},
	{"advertise", "", "address other nodes and clients use to reach this node (for NAT and containers); empty: --bind, or the first private address when --bind is 0.0.0.0",
		func(o *options, v string) error {
			if o.advertise = v; v == "" {
				return nil
			}
			return checkHost(v)
		}},
	{"announce-addr", "", "RESP host:port this node tells clients to dial (CLUSTER SLOTS/SHARDS/NODES, MOVED) when it differs from --advertise and --port, as with a published container port; empty: --advertise with --port",
		func(o *options, v string) (err error) { o.announce, err = parseHostPort(v); return }},
	{"announce-fb-addr", "", "FlatBuffers host:port this node tells clients to dial, as --announce-addr for --fb-port; empty: --advertise with --fb-port",
		func(o *options, v string) (err error) { o.announceFB, err = parseHostPort(v); return }},
	{"data-dir", "", "directory for the cluster's raft state, so a restarted node rejoins as itself; empty keeps it in memory",
		func(o *options, v string) error { o.dataDir = v; return nil }},
	{"replicas", "-1", "extra copies of each slot; -1 means 1 once there are 2 or more nodes",
		func(o *options, v string) (err error) { o.replicas, err = parseInt(v, -1, 8); return }},
	{"replication", "sync", "when a reply to a write leaves: sync (once the slot's replicas applied it) or async (at once; WAIT waits)",
		func(o *options, v string) error {
			o.replication = strings.ToLower(v)
			if o.replication != node.ReplicationSync && o.replication != node.ReplicationAsync {
				return fmt.Errorf("%q: want sync or async", v)
			}
			return nil
		}},
	{"replication-timeout", "2s", "how long a synchronous reply waits for replicas before the connection is closed with it unsent",
		func(o *options, v string) (err error) {
			o.replTimeout, err = time.ParseDuration(v)
			if err == nil && o.replTimeout <= 0 {
				err = fmt.Errorf("%q: want a positive duration", v)
			}
			return err
		}},
	{"redirect", "auto", "which clients get MOVED for a slot owned elsewhere: auto (cluster-aware connections; others are forwarded), always or never",
		func(o *options, v string) error {
			o.redirect = strings.ToLower(v)
			if o.redirect != node.RedirectAuto && o.redirect != node.RedirectAlways && o.redirect != node.RedirectNever {
				return fmt.Errorf("%q: want auto, always or never", v)
			}
			return nil
		}},
	{"gossip-key", "", "shared key encrypting gossip: 16, 24 or 32 bytes, base64-encoded; every node needs the same one. To rotate keys, a comma-separated list: the first encrypts, all decrypt",
		func(o *options, v string) error {
			keys, err := parseGossipKeys(v)
			o.gossipKey, o.gossipKeys = nil, nil
			if len(keys) > 0 {
				o.gossipKey, o.gossipKeys = keys[0], keys[1:]
			}
			return err
		}},
	{"cluster-secret", "", "shared secret authenticating and encrypting (TLS) the cluster port between nodes (base64, 16+ bytes); empty: neither, unless --cluster-tls-cert, for private networks only",
		func(o *options, v string) error {
			o.clusterSecret = nil
			if v == "" {
				return nil
			}
			// The error never quotes v: it is a secret.
			k, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(k) < 16 {
				return fmt.Errorf("want 16 or more bytes in base64")
			}
			o.clusterSecret = k
			return nil
		}},
	{"cluster-tls-cert", "", "PEM certificate this node presents on the cluster port (mutual TLS with --cluster-tls-key and --cluster-tls-ca), for both server and client auth; reloaded when the file changes",
		func(o *options, v string) error { o.clusterTLSCert = v; return nil }},
	{"cluster-tls-key", "", "PEM private key of --cluster-tls-cert",
		func(o *options, v string) error { o.clusterTLSKey = v; return nil }},
	{"cluster-tls-ca", "", "PEM CA bundle that signs the cluster's members: every certificate it signed is a member, so keep it for this cluster alone",
		func(o *options, v string) error { o.clusterTLSCA = v; return nil }},
	{"aclfile", "", "ACL users file in Redis's format (user <name> <rules>), loaded at start; ACL LOAD and ACL SAVE use it",
		func(o *options, v string) error { o.aclFile = v; return nil }},
	{"tls-port", "0", "RESP port serving TLS (with --tls-cert and --tls-key); 0 turns it off",
		func(o *options, v string) (err error) { o.tlsPort, err = parsePort(v, true); return }},
	{"fb-tls-port", "0", "FlatBuffers port serving TLS (with --tls-cert and --tls-key), beside --fb-port; 0 turns it off",
		func(o *options, v string) (err error) { o.fbTLSPort, err = parsePort(v, true); return }},
	{"tls-cert", "", "PEM certificate of the TLS ports; reloaded when the file changes",
		func(o *options, v string) error { o.tlsCert = v; return nil }},
	{"tls-key", "", "PEM private key of the TLS ports",
		func(o *options, v string) error { o.tlsKey = v; return nil }},
	{"tls-ca", "", "PEM CA bundle: when set, TLS clients must present a certificate it signed",
		func(o *options, v string) error { o.tlsCA = v; return nil }},
	{"protected-mode", "yes", "yes: refuse clients from other hosts while the default user has no password (Redis's protected mode); no: allow them",
		func(o *options, v string) error {
			switch strings.ToLower(v) {
			case "yes":
				o.protectedMode = true
			case "no":
				o.protectedMode = false
			default:
				return fmt.Errorf("%q: want yes or no", v)
			}
			return nil
		}},
}

// envName is the environment variable of an option: "maxmemory-policy" is
// SLUICE_MAXMEMORY_POLICY.
func envName(name string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// loadOptions merges, for each option, the first of: its flag in args, its
// variable in environ ("NAME=value" pairs, as os.Environ returns), its
// directive in the config file (--config or SLUICE_CONFIG), its default. Only
// the value that wins is parsed, and an error names where that value came
// from. It returns flag.ErrHelp for -h and --help. Warnings are for the log,
// which does not exist yet.
func loadOptions(args, environ []string) (o options, warnings []string, err error) {
	env := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "SLUICE_") {
			env[name] = value
		}
	}
	flags := map[string]string{}
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, opt := range optionTable {
		fs.Func(opt.name, opt.usage, func(v string) error { flags[opt.name] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	if fs.NArg() > 0 {
		return o, nil, fmt.Errorf("unexpected argument %q (a config file is given with --config)", fs.Arg(0))
	}

	type source struct{ value, from string }
	chosen := map[string]source{}
	path, ok := flags["config"]
	if !ok {
		path, ok = env[envName("config")]
	}
	if ok && path != "" {
		file, err := readConfigFile(path)
		if err != nil {
			return o, nil, err
		}
		for _, d := range file {
			chosen[d.name] = source{d.args[0], fmt.Sprintf("%s:%d: %s", path, d.line, d.name)}
		}
	}
	for _, opt := range optionTable {
		if v, ok := env[envName(opt.name)]; ok {
			chosen[opt.name] = source{v, envName(opt.name)}
		}
		if v, ok := flags[opt.name]; ok {
			chosen[opt.name] = source{v, "--" + opt.name}
		}
	}
	for _, opt := range optionTable {
		src, ok := chosen[opt.name]
		if !ok {
			src = source{opt.def, "default of --" + opt.name}
		}
		if err := opt.set(&o, src.value); err != nil {
			return o, nil, fmt.Errorf("%s: %w", src.from, err)
		}
	}
	return o, unknownEnv(env), nil
}

// readConfigFile parses the file at path and checks each directive names an
// option and has one argument.
func readConfigFile(path string) ([]directive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	ds, err := parseConfig(path, f)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		switch {
		case d.name == "config":
			return nil, fmt.Errorf("%s:%d: config: a config file cannot name another", path, d.line)
		case lookupOption(d.name) == nil:
			return nil, fmt.Errorf("%s:%d: unknown option %q (see sluice --help)", path, d.line, d.name)
		case len(d.args) != 1:
			return nil, fmt.Errorf("%s:%d: %s takes one value, got %d (quote a value with spaces)", path, d.line, d.name, len(d.args))
		}
	}
	return ds, nil
}

func lookupOption(name string) *option {
	for i := range optionTable {
		if optionTable[i].name == name {
			return &optionTable[i]
		}
	}
	return nil
}

// unknownEnv lists warnings for SLUICE_ variables that name no option, most
// likely typos (SLUICE_MAX_MEMORY for SLUICE_MAXMEMORY) that would otherwise
// be ignored silently.
func unknownEnv(env map[string]string) []string {
	known := map[string]bool{}
	for _, opt := range optionTable {
		known[envName(opt.name)] = true
	}
	var warnings []string
	for name := range env {
		if !known[name] {
			warnings = append(warnings, "ignoring unknown environment variable "+name)
		}
	}
	slices.Sort(warnings)
	return warnings
}

// usage writes --help: each option with its environment variable and default.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: sluice [flags]

Sluice is an in-memory cache and rate-limit server that speaks the Redis
protocol. Each flag can also be set in the environment (SLUICE_<NAME>) or in a
config file given with --config; a flag beats the environment, which beats the
file. Memory sizes accept Redis units: b, k, kb, m, mb, g, gb.

Flags:
`)
	for _, opt := range optionTable {
		def := opt.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%s\n        %s\n        default %s, env %s\n", opt.name, opt.usage, def, envName(opt.name))
	}
}

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q: want a whole number from %d to %d", v, lo, hi)
	}
	return n, nil
}

func parsePort(v string, zeroOK bool) (int, error) {
	lo := 1
	if zeroOK {
		lo = 0
	}
	return parseInt(v, lo, 65535)
}

// parseSize reads a memory size with Redis's units (node.ParseMemory, as
// CONFIG SET reads them).
func parseSize(v string) (int64, error) {
	n, err := node.ParseMemory(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a whole number of bytes, optionally with a unit: b, k, kb, m, mb, g, gb (as in 100mb)", v)
	}
	return n, nil
}

// parseHostPort accepts "" or host:port with a host checkHost accepts and a
// port from 1 to 65535.
func parseHostPort(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("%q: want host:port", v)
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	if _, err := parsePort(port, false); err != nil {
		return "", err
	}
	return v, nil
}

var errHost = errors.New("want an IP address or a host name, without a port")

// checkHost accepts an IP address or a DNS name.
func checkHost(v string) error {
	if net.ParseIP(v) != nil {
		return nil
	}
	if v == "" || len(v) > 253 || strings.TrimLeft(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != "" {
		return fmt.Errorf("%q: %w", v, errHost)
	}
	return nil
}
