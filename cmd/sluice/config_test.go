package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func defaultOptions() options {
	return options{
		bind:            "127.0.0.1",
		port:            6379,
		fbPort:          6380,
		adminPort:       9121,
		maxMemoryPolicy: "allkeys-lfu",
		maxClients:      10000,
		protoMaxBulkLen: 512 << 20,
		logFormat:       "text",
		logLevel:        slog.LevelInfo,
		gossipPort:      7946,
		clusterPort:     7947,
		replicas:        -1,
		redirect:        "auto",
		replication:     "sync",
		replTimeout:     2 * time.Second,
		protectedMode:   true,
	}
}

// writeConfig writes a config file into a fresh directory and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadOptionsPrecedence(t *testing.T) {
	file := writeConfig(t, `# a sluice.conf
port 1111
maxmemory 1mb
maxclients 11
requirepass "from file"
log-format json
`)
	other := writeConfig(t, "port 4444\n")
	for _, tc := range []struct {
		name    string
		args    []string
		environ []string
		want    func(o *options)
	}{
		{"defaults", nil, nil, func(o *options) {}},
		{"fb port from the environment", nil, []string{"SLUICE_FB_PORT=7380"}, func(o *options) { o.fbPort = 7380 }},
		{"file", []string{"--config", file}, nil, func(o *options) {
			o.config, o.port, o.maxMemory, o.maxClients, o.requirePass, o.logFormat = file, 1111, 1<<20, 11, "from file", "json"
		}},
		{"env beats file", []string{"--config", file}, []string{"SLUICE_PORT=2222", "SLUICE_MAXMEMORY=2mb"}, func(o *options) {
			o.config, o.port, o.maxMemory, o.maxClients, o.requirePass, o.logFormat = file, 2222, 2<<20, 11, "from file", "json"
		}},
		{"flag beats env and file", []string{"--config", file, "--port", "3333", "-maxclients=33"},
			[]string{"SLUICE_PORT=2222", "SLUICE_MAXMEMORY=2mb"}, func(o *options) {
				o.config, o.port, o.maxMemory, o.maxClients, o.requirePass, o.logFormat = file, 3333, 2<<20, 33, "from file", "json"
			}},
		{"config file from env", nil, []string{"SLUICE_CONFIG=" + other}, func(o *options) {
			o.config, o.port = other, 4444
		}},
		{"config flag beats env", []string{"--config=" + other}, []string{"SLUICE_CONFIG=" + file}, func(o *options) {
			o.config, o.port = other, 4444
		}},
		{"empty env value counts", nil, []string{"SLUICE_REQUIREPASS="}, func(o *options) {}},
		{"only the winning value is parsed", []string{"--port", "5"}, []string{"SLUICE_PORT=not a port"}, func(o *options) {
			o.port = 5
		}},
		{"the last flag wins", []string{"--port", "5", "--port", "6"}, nil, func(o *options) { o.port = 6 }},
		{"cluster secret from the environment", nil, []string{"SLUICE_CLUSTER_SECRET=MDEyMzQ1Njc4OWFiY2RlZg=="}, func(o *options) {
			o.clusterSecret = []byte("0123456789abcdef")
		}},
		{"every option", []string{
			"--bind", "::1", "--port", "7000", "--fb-port", "0", "--admin-port", "0", "--node-name", "n1",
			"--maxmemory", "1gb", "--maxmemory-policy", "noeviction", "--requirepass", "pw",
			"--maxclients", "5", "--timeout", "300", "--proto-max-bulk-len", "1mb",
			"--log-format", "json", "--log-level", "debug",
		}, nil, func(o *options) {
			o.bind, o.port, o.fbPort, o.adminPort, o.nodeName, o.maxMemory = "::1", 7000, 0, 0, "n1", 1<<30
			o.maxMemoryPolicy, o.requirePass, o.maxClients, o.timeout = "noeviction", "pw", 5, 300*time.Second
			o.protoMaxBulkLen, o.logFormat, o.logLevel = 1<<20, "json", slog.LevelDebug
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := loadOptions(tc.args, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			want := defaultOptions()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %q", warnings)
			}
		})
	}
}

func TestLoadOptionsErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.conf")
	for _, tc := range []struct {
		name    string
		args    []string
		environ []string
		file    string // written and passed with --config when set
		want    string
	}{
		{"bad flag value", []string{"--port", "abc"}, nil, "", `--port: "abc": want a whole number from 1 to 65535`},
		{"port 0", []string{"--port", "0"}, nil, "", `--port: "0": want a whole number from 1 to 65535`},
		{"port too large", []string{"--admin-port", "65536"}, nil, "", `--admin-port: "65536": want a whole number from 0 to 65535`},
		{"bad fb port", nil, []string{"SLUICE_FB_PORT=-1"}, "", `SLUICE_FB_PORT: "-1": want a whole number from 0 to 65535`},
		{"bad env value", nil, []string{"SLUICE_MAXMEMORY=lots"}, "", `SLUICE_MAXMEMORY: "lots": want a whole number of bytes`},
		{"bad file value", nil, nil, "port 1\nmaxmemory 1tb\n", `sluice.conf:2: maxmemory: "1tb": want a whole number of bytes`},
		{"unknown directive", nil, nil, "daemonize no\n", `sluice.conf:1: unknown option "daemonize"`},
		{"two values", nil, nil, "bind 127.0.0.1 ::1\n", "sluice.conf:1: bind takes one value, got 2"},
		{"no value", nil, nil, "\n\nport\n", "sluice.conf:3: port takes one value, got 0"},
		{"config in a config file", nil, nil, "config other.conf\n", "sluice.conf:1: config: a config file cannot name another"},
		{"unbalanced quotes", nil, nil, `requirepass "abc` + "\n", "sluice.conf:1: unbalanced quotes"},
		{"missing file", []string{"--config", missing}, nil, "", "config file: open " + missing},
		{"unknown flag", []string{"--fbport", "6380"}, nil, "", "flag provided but not defined: -fbport"},
		{"missing flag value", []string{"--port"}, nil, "", "flag needs an argument: -port"},
		{"positional argument", []string{"redis.conf"}, nil, "", `unexpected argument "redis.conf"`},
		{"small bulk limit", []string{"--proto-max-bulk-len", "1kb"}, nil, "", `--proto-max-bulk-len: "1kb": must be at least 1mb`},
		{"negative timeout", []string{"--timeout", "-1"}, nil, "", `--timeout: "-1": want a whole number from 0`},
		{"bad log format", []string{"--log-format", "xml"}, nil, "", `--log-format: "xml": want text or json`},
		{"bad log level", nil, []string{"SLUICE_LOG_LEVEL=loud"}, "", `SLUICE_LOG_LEVEL: "loud": want debug, info, warn or error`},
		{"bind with a port", []string{"--bind", "127.0.0.1:6379"}, nil, "", `--bind: "127.0.0.1:6379": want an IP address or a host name`},
		{"empty bind", []string{"--bind", ""}, nil, "", `--bind: "": want an IP address or a host name`},
		{"bad policy", []string{"--maxmemory-policy", "lru"}, nil, "", "--maxmemory-policy: "},
		{"zero maxclients", []string{"--maxclients", "0"}, nil, "", `--maxclients: "0": want a whole number from 1`},
		{"short cluster secret", []string{"--cluster-secret", "c2hvcnQgc2VjcmV0"}, nil, "", "--cluster-secret: want 16 or more bytes in base64"},
		{"cluster secret not base64", nil, nil, "cluster-secret hunter2-hunter2-hunter2\n", "sluice.conf:1: cluster-secret: want 16 or more bytes in base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			_, _, err := loadOptions(args, tc.environ)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err = %v quotes the secret", err)
			}
		})
	}
}

func TestLoadOptionsWarnsOfUnknownEnv(t *testing.T) {
	_, warnings, err := loadOptions(nil, []string{"SLUICE_MAX_MEMORY=1gb", "SLUICE_PORT=7000", "OTHER_THING=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ignoring unknown environment variable SLUICE_MAX_MEMORY"}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		_, _, err := loadOptions([]string{arg}, nil)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("loadOptions(%s) = %v, want flag.ErrHelp", arg, err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, nil, &stdout, &stderr, nil); code != exitOK {
		t.Errorf("sluice --help exited %d", code)
	}
	for _, opt := range optionTable {
		want := "--" + opt.name + "\n"
		if !strings.Contains(stdout.String(), want) || !strings.Contains(stdout.String(), envName(opt.name)) {
			t.Errorf("--help does not document %s with %s:\n%s", want, envName(opt.name), stdout.String())
		}
	}
}

func TestRunUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--port", "x"}, nil, &stdout, &stderr, nil); code != exitUsage {
		t.Errorf("exit status %d, want %d", code, exitUsage)
	}
	if want := "sluice: --port: \"x\""; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not contain %q", stderr.String(), want)
	}
}

func TestEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"port":               "SLUICE_PORT",
		"maxmemory-policy":   "SLUICE_MAXMEMORY_POLICY",
		"proto-max-bulk-len": "SLUICE_PROTO_MAX_BULK_LEN",
	} {
		if got := envName(name); got != want {
			t.Errorf("envName(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestREADMEFlags keeps the flags table in README.md true: it must hold a row
// for every option, as written here.
func TestREADMEFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, opt := range optionTable {
		def := "`" + opt.def + "`"
		if opt.def == "" {
			def = "empty"
		}
		fmt.Fprintf(&want, "| `--%s` | `%s` | %s | %s |\n", opt.name, envName(opt.name), def, opt.usage)
	}
	if !strings.Contains(string(readme), want.String()) {
		t.Errorf("README.md's flags table is out of date; it should read:\n\n%s", want.String())
	}
}

func TestLoadOptionsMemoryUnits(t *testing.T) {
	for in, want := range map[string]int64{
		"0":     0,
		"100":   100,
		"1b":    1,
		"1k":    1000,
		"1kb":   1 << 10,
		"1K":    1000,
		"1KB":   1 << 10,
		"2m":    2 * 1000 * 1000,
		"100mb": 100 << 20,
		"100Mb": 100 << 20,
		"1g":    1000 * 1000 * 1000,
		"1gb":   1 << 30,
		"8gb":   8 << 30,
	} {
		for _, src := range []struct {
			args    []string
			environ []string
		}{
			{[]string{"--maxmemory", in}, nil},
			{nil, []string{"SLUICE_MAXMEMORY=" + in}},
			{[]string{"--config", writeConfig(t, "maxmemory "+in)}, nil},
		} {
			o, _, err := loadOptions(src.args, src.environ)
			if err != nil || o.maxMemory != want {
				t.Errorf("maxmemory %q from %q %q = %d, %v; want %d", in, src.args, src.environ, o.maxMemory, err, want)
			}
		}
	}
	for _, in := range []string{"", "mb", "-1", "1.5mb", "1 mb", "1tb", "1kib", "0x10", "9223372036854775808", "8589934592gb"} {
		if o, _, err := loadOptions([]string{"--maxmemory", in}, nil); err == nil {
			t.Errorf("--maxmemory %q = %d, want an error", in, o.maxMemory)
		}
	}
}

func TestLoadOptionsAnnounce(t *testing.T) {
	o, _, err := loadOptions([]string{"--announce-addr", "127.0.0.1:7001", "--announce-fb-addr", "cache.example:7101"}, nil)
	if err != nil || o.announce != "127.0.0.1:7001" || o.announceFB != "cache.example:7101" {
		t.Fatalf("announce %q, fb %q, %v", o.announce, o.announceFB, err)
	}
	for _, in := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":7001", "a b:7001", "127.0.0.1:x"} {
		if _, _, err := loadOptions([]string{"--announce-addr", in}, nil); err == nil {
			t.Errorf("--announce-addr %q: no error", in)
		}
	}
}
