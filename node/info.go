package node

import (
	"os"

	"github.com/sluicedb/sluice/store"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// INFO, with the sections Redis users and tools read.

func init() {
	register(&Command{Name: "info", Arity: -1, Flags: flagLoading | flagStale | flagDangerous, Group: "server", Since: "1.0.0", Summary: "Returns information and statistics about the server.", Handler: cmdInfo})
}

// infoSections in output order; default marks the ones INFO with no argument shows.
var infoSections = []struct {
	name    string
	dflt    bool
	section func(n *Node, b []byte) []byte
}{
	{"server", true, (*Node).infoServer},
	{"clients", true, (*Node).infoClients},
	{"memory", true, (*Node).infoMemory},
	{"persistence", true, (*Node).infoPersistence},
	{"stats", true, (*Node).infoStats},
	{"replication", true, (*Node).infoReplication},
	{"cpu", true, (*Node).infoCPU},
	{"modules", true, nil},
	{"errorstats", true, (*Node).infoErrorStats},
	{"cluster", true, (*Node).infoCluster},
	{"keyspace", true, (*Node).infoKeyspace},
	{"commandstats", false, (*Node).infoCommandStats},
}

func cmdInfo(c *Client, args [][]byte) {
	want := map[string]bool{}
	all := false
	if len(args) == 1 {
		want["default"] = true
	}
	for _, a := range args[1:] {
		s := strings.ToLower(string(a))
		if s == "all" || s == "everything" {
			all = true
		}
		want[s] = true
	}
	var b []byte
	for _, s := range infoSections {
		if !(all || want[s.name] || (want["default"] && s.dflt)) {
			continue
		}
		if len(b) > 0 {
			b = append(b, "\r\n"...)
		}
		b = append(b, "# "...)
		b = append(b, sectionTitle(s.name)...)
		b = append(b, "\r\n"...)
		if s.section != nil {
			b = s.section(c.n, b)
		}
	}
	c.w.Verbatim("txt", b)
}

// sectionTitle is the header Redis prints for a section: "Server", "CPU".
func sectionTitle(name string) string {
	if name == "cpu" {
		return "CPU"
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

func field(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ':')
	b = append(b, value...)
	return append(b, "\r\n"...)
}

func fieldInt(b []byte, name string, v int64) []byte {
	b = append(b, name...)
	b = append(b, ':')
	b = strconv.AppendInt(b, v, 10)
	return append(b, "\r\n"...)
}

// Version is Sluice's own version.
const Version = "0.1.0"

func (n *Node) infoServer(b []byte) []byte {
	up := time.Since(n.start)
	b = field(b, "redis_version", RedisVersion)
	b = field(b, "sluice_version", Version)
	b = field(b, "redis_mode", "standalone")
	b = field(b, "os", runtime.GOOS+" "+runtime.GOARCH)
	b = fieldInt(b, "arch_bits", 64)
	b = field(b, "multiplexing_api", "goroutines")
	b = field(b, "go_version", runtime.Version())
	b = fieldInt(b, "process_id", int64(os.Getpid()))
	b = field(b, "run_id", n.id)
	b = fieldInt(b, "tcp_port", int64(n.port()))
	b = fieldInt(b, "server_time_usec", time.Now().UnixMicro())
	b = fieldInt(b, "uptime_in_seconds", int64(up/time.Second))
	b = fieldInt(b, "uptime_in_days", int64(up/(24*time.Hour)))
	b = fieldInt(b, "hz", 10)
	exe, _ := os.Executable()
	b = field(b, "executable", exe)
	return field(b, "config_file", n.cfg.ConfigFile)
}

func (n *Node) infoClients(b []byte) []byte {
	b = fieldInt(b, "connected_clients", int64(n.clientCount()))
	b = fieldInt(b, "cluster_connections", 0)
	b = fieldInt(b, "maxclients", int64(n.Limits().MaxClients))
	b = fieldInt(b, "blocked_clients", 0)
	b = fieldInt(b, "tracking_clients", int64(n.tracking.enabled.Load()))
	return fieldInt(b, "clients_in_timeout_table", 0)
}

func (n *Node) infoMemory(b []byte) []byte {
	st := n.store.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	max := n.maxMemory.Load()
	b = fieldInt(b, "used_memory", st.Memory)
	b = field(b, "used_memory_human", humanBytes(st.Memory))
	b = fieldInt(b, "used_memory_peak", n.stats.peakMemory(st.Memory))
	b = fieldInt(b, "used_memory_rss", rss())
	b = field(b, "used_memory_rss_human", humanBytes(rss()))
	b = fieldInt(b, "used_memory_heap", int64(ms.HeapAlloc))
	b = fieldInt(b, "used_memory_sys", int64(ms.Sys))
	b = fieldInt(b, "maxmemory", max)
	b = field(b, "maxmemory_human", humanBytes(max))
	b = field(b, "maxmemory_policy", store.Policy(n.policy.Load()).String())
	b = fieldInt(b, "gc_cycles", int64(ms.NumGC))
	return field(b, "gc_pause_total_ms", strconv.FormatFloat(float64(ms.PauseTotalNs)/1e6, 'f', 3, 64))
}

func (n *Node) infoPersistence(b []byte) []byte {
	b = fieldInt(b, "loading", 0)
	b = fieldInt(b, "async_loading", 0)
	b = fieldInt(b, "rdb_bgsave_in_progress", 0)
	return fieldInt(b, "aof_enabled", 0)
}

func (n *Node) infoStats(b []byte) []byte {
	st := n.store.Stats()
	b = fieldInt(b, "total_connections_received", n.stats.totalConns.Load())
	b = fieldInt(b, "total_commands_processed", n.stats.commands())
	b = fieldInt(b, "instantaneous_ops_per_sec", n.stats.opsPerSec())
	b = fieldInt(b, "rejected_connections", n.stats.rejectedConns.Load())
	b = fieldInt(b, "expired_keys", st.Expired)
	b = fieldInt(b, "evicted_keys", st.Evicted)
	b = fieldInt(b, "keyspace_hits", n.stats.hits.Load())
	b = fieldInt(b, "keyspace_misses", n.stats.misses.Load())
	n.tracking.mu.Lock()
	tracked := len(n.tracking.keys)
	n.tracking.mu.Unlock()
	b = fieldInt(b, "tracking_total_keys", int64(tracked))
	return fieldInt(b, "total_error_replies", n.stats.errorReplies.Load())
}

func (n *Node) infoReplication(b []byte) []byte {
	b = n.replicationInfo(b)
	b = field(b, "master_replid", n.id)
	return fieldInt(b, "master_repl_offset", 0)
}

func (n *Node) infoCPU(b []byte) []byte {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	sec := func(t syscall.Timeval) string {
		return strconv.FormatFloat(float64(t.Sec)+float64(t.Usec)/1e6, 'f', 6, 64)
	}
	b = field(b, "used_cpu_sys", sec(self.Stime))
	b = field(b, "used_cpu_user", sec(self.Utime))
	b = field(b, "used_cpu_sys_children", sec(children.Stime))
	return field(b, "used_cpu_user_children", sec(children.Utime))
}

func (n *Node) infoErrorStats(b []byte) []byte {
	n.stats.errMu.Lock()
	defer n.stats.errMu.Unlock()
	prefixes := make([]string, 0, len(n.stats.errors))
	for p := range n.stats.errors {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		b = append(b, "errorstat_"...)
		b = append(b, p...)
		b = append(b, ":count="...)
		b = strconv.AppendInt(b, n.stats.errors[p], 10)
		b = append(b, "\r\n"...)
	}
	return b
}

func (n *Node) infoCluster(b []byte) []byte {
	if n.cluster == nil {
		return fieldInt(b, "cluster_enabled", 0)
	}
	st := n.cluster.Status()
	b = fieldInt(b, "cluster_enabled", 1)
	b = fieldInt(b, "cluster_known_nodes", int64(len(n.cluster.Members())))
	b = fieldInt(b, "cluster_current_epoch", int64(st.Epoch))
	b = field(b, "cluster_leader", st.Leader)
	b = field(b, "cluster_raft_state", strings.ToLower(st.RaftState))
	quorum := "no"
	if st.HasQuorum {
		quorum = "yes"
	}
	b = field(b, "cluster_quorum", quorum)
	b = fieldInt(b, "cluster_forwarded_commands", n.stats.forwarded.Load())
	return fieldInt(b, "cluster_forward_errors", n.stats.forwardErrors.Load())
}

func (n *Node) infoKeyspace(b []byte) []byte {
	st := n.store.Stats()
	if n.table() != nil {
		// As DBSIZE: this node's own slots. Expires counts the copies too.
		st.Keys = int64(n.dbSize())
	}
	if st.Keys == 0 {
		return b
	}
	b = append(b, "db0:keys="...)
	b = strconv.AppendInt(b, st.Keys, 10)
	b = append(b, ",expires="...)
	b = strconv.AppendInt(b, st.Expires, 10)
	return append(b, ",avg_ttl=0\r\n"...)
}

func (n *Node) infoCommandStats(b []byte) []byte {
	type row struct {
		name string
		s    *cmdStats
	}
	var rows []row
	for id, s := range n.stats.perCmd {
		cmd := commandList[id]
		if s.calls.Load() > 0 || s.rejected.Load() > 0 || s.failed.Load() > 0 {
			rows = append(rows, row{cmd.fullName, s})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	for _, r := range rows {
		calls, usec := r.s.calls.Load(), r.s.usec.Load()
		per := 0.0
		if calls > 0 {
			per = float64(usec) / float64(calls)
		}
		b = append(b, "cmdstat_"...)
		b = append(b, r.name...)
		b = append(b, ":calls="...)
		b = strconv.AppendInt(b, calls, 10)
		b = append(b, ",usec="...)
		b = strconv.AppendInt(b, usec, 10)
		b = append(b, ",usec_per_call="...)
		b = strconv.AppendFloat(b, per, 'f', 2, 64)
		b = append(b, ",rejected_calls="...)
		b = strconv.AppendInt(b, r.s.rejected.Load(), 10)
		b = append(b, ",failed_calls="...)
		b = strconv.AppendInt(b, r.s.failed.Load(), 10)
		b = append(b, "\r\n"...)
	}
	return b
}

// humanBytes formats a byte count as Redis's used_memory_human does.
func humanBytes(n int64) string {
	f := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + "B"
	case n < 1<<20:
		return strconv.FormatFloat(f/(1<<10), 'f', 2, 64) + "K"
	case n < 1<<30:
		return strconv.FormatFloat(f/(1<<20), 'f', 2, 64) + "M"
	default:
		return strconv.FormatFloat(f/(1<<30), 'f', 2, 64) + "G"
	}
}

// rss reads the resident set size from /proc (0 where there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
