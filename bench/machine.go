package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// machine describes where a run happened: the report's header.
type machine struct {
	cpu          string // model name
	cores        int
	memory       string // MemTotal
	kernel       string
	load0, load1 string // load averages (1, 5, 15 min) at the start and the end
	goVersion    string
	redisVersion string
}

func describeMachine(root string) machine {
	m := machine{cores: runtime.NumCPU(), load0: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok { // "24684092 kB"
				if kb, err := strconv.ParseFloat(strings.Fields(v)[0], 64); err == nil {
					m.memory = strconv.FormatFloat(kb/(1<<20), 'f', 1, 64) + " GiB"
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	m.goVersion = output(root, "go", "env", "GOVERSION")
	m.redisVersion = output(root, "redis-server", "--version")
	if f := strings.Fields(m.redisVersion); len(f) >= 3 { // Redis server v=7.0.15 sha=…
		m.redisVersion = "Redis " + strings.TrimPrefix(f[2], "v=")
	}
	return m
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
