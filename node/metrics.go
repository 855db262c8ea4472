package node

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the node's Prometheus metrics: commands and their
// latency by name, keys, memory, evictions, expirations, keyspace hits and
// misses, clients and rate-limit decisions. Register it on any registry; the
// numbers are the ones INFO reports. Per-command series appear once a
// command has run, so an idle node exports little; the collector is
// therefore unchecked (it describes no fixed set of series).
func (n *Node) Collector() prometheus.Collector { return (*collector)(n) }

type collector Node

var (
	descCommands   = prometheus.NewDesc("sluice_commands_total", "Commands processed, by command.", []string{"command"}, nil)
	descFailed     = prometheus.NewDesc("sluice_command_errors_total", "Commands that replied with an error, by command.", []string{"command"}, nil)
	descRejected   = prometheus.NewDesc("sluice_commands_rejected_total", "Commands refused before running (arity, auth, OOM), by command.", []string{"command"}, nil)
	descKeys       = prometheus.NewDesc("sluice_keys", "Keys in the store.", nil, nil)
	descExpires    = prometheus.NewDesc("sluice_keys_with_ttl", "Keys with a time to live.", nil, nil)
	descMemory     = prometheus.NewDesc("sluice_memory_used_bytes", "Memory accounted against maxmemory.", nil, nil)
	descMaxMemory  = prometheus.NewDesc("sluice_memory_max_bytes", "The maxmemory limit (0 = none).", nil, nil)
	descEvicted    = prometheus.NewDesc("sluice_evicted_keys_total", "Keys evicted to stay under maxmemory.", nil, nil)
	descExpired    = prometheus.NewDesc("sluice_expired_keys_total", "Keys removed because their TTL passed.", nil, nil)
	descHits       = prometheus.NewDesc("sluice_keyspace_hits_total", "Reads that found their key.", nil, nil)
	descMisses     = prometheus.NewDesc("sluice_keyspace_misses_total", "Reads that did not find their key.", nil, nil)
	descClients    = prometheus.NewDesc("sluice_connected_clients", "Client connections open now.", nil, nil)
	descConns      = prometheus.NewDesc("sluice_connections_total", "Client connections accepted.", nil, nil)
	descForwarded  = prometheus.NewDesc("sluice_forwarded_commands_total", "Commands run on their slot's owner for a client of this node.", nil, nil)
	descForwardErr = prometheus.NewDesc("sluice_forward_errors_total", "Forwarded commands that failed to reach their owner.", nil, nil)
	descMembers    = prometheus.NewDesc("sluice_cluster_members", "Cluster members by state (alive, suspect, dead, left).", []string{"state"}, nil)
	descEpoch      = prometheus.NewDesc("sluice_cluster_epoch", "Epoch of the slot table this node serves.", nil, nil)
	descQuorum     = prometheus.NewDesc("sluice_cluster_quorum", "1 while this node's side of the cluster has a raft quorum.", nil, nil)
	descLeader     = prometheus.NewDesc("sluice_cluster_leader", "1 while this node is the raft leader.", nil, nil)
	descOwned      = prometheus.NewDesc("sluice_cluster_owned_slots", "Slots this node owns in the table it serves.", nil, nil)
	descRate       = prometheus.NewDesc("sluice_ratelimit_decisions_total", "Rate-limit decisions, by command and result (allowed, limited).", []string{"command", "result"}, nil)
	descRejectConn = prometheus.NewDesc("sluice_connections_rejected_total", "Client connections refused by maxclients.", nil, nil)
)

func boolGauge(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Describe describes nothing: an unchecked collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := (*Node)(c)
	for id, s := range n.stats.perCmd {
		cmd := commandList[id]
		if calls := s.calls.Load(); calls > 0 || s.rejected.Load() > 0 {
			ch <- prometheus.MustNewConstMetric(descCommands, prometheus.CounterValue, float64(calls), cmd.fullName)
			ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(s.failed.Load()), cmd.fullName)
			ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(s.rejected.Load()), cmd.fullName)
		}
		if s.calls.Load() > 0 {
			s.latency.Collect(ch)
		}
	}
	st := n.store.Stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descKeys, st.Keys)
	gauge(descExpires, st.Expires)
	gauge(descMemory, st.Memory)
	gauge(descMaxMemory, n.maxMemory.Load())
	counter(descEvicted, st.Evicted)
	counter(descExpired, st.Expired)
	counter(descHits, n.stats.hits.Load())
	counter(descMisses, n.stats.misses.Load())
	gauge(descClients, int64(n.clientCount()))
	counter(descConns, n.stats.totalConns.Load())
	counter(descRejectConn, n.stats.rejectedConns.Load())
	if cl := n.cluster; cl != nil {
		counter(descForwarded, n.stats.forwarded.Load())
		counter(descForwardErr, n.stats.forwardErrors.Load())
		st := cl.Status()
		states := map[string]int64{}
		for _, m := range cl.Members() {
			states[m.State.String()]++
		}
		for _, s := range []string{"alive", "suspect", "dead", "left"} {
			ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(states[s]), s)
		}
		gauge(descEpoch, int64(st.Epoch))
		gauge(descQuorum, boolGauge(st.HasQuorum))
		gauge(descLeader, boolGauge(st.Leader == n.id))
		if t := cl.Table(); t != nil {
			gauge(descOwned, int64(len(t.SlotsOf(n.id))))
		}
	}
	for _, r := range []struct {
		cmd    string
		counts *[2]atomic.Int64
	}{{"cl.throttle", &n.rates.throttle}, {"rl.take", &n.rates.take}, {"api", &n.rates.api}} {
		ch <- prometheus.MustNewConstMetric(descRate, prometheus.CounterValue, float64(r.counts[0].Load()), r.cmd, "allowed")
		ch <- prometheus.MustNewConstMetric(descRate, prometheus.CounterValue, float64(r.counts[1].Load()), r.cmd, "limited")
	}
}
