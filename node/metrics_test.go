package node

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	s := connect(t, n)
	s.do("SET", "k", "v")
	s.do("GET", "k")
	s.do("GET", "missing")
	s.do("RL.TAKE", "b", "LIMIT", "1", "PERIOD", "1000")
	s.do("RL.TAKE", "b", "LIMIT", "1", "PERIOD", "1000")
	// Commands 6 to 21: GETs. One command in eight is timed (the 8th and the
	// 16th of this session), so the GET histogram holds two samples.
	for range 16 {
		s.do("GET", "k")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
		metrics:
			for _, m := range f.GetMetric() {
				for _, lp := range m.GetLabel() {
					if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
						continue metrics
					}
				}
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue(), true
				case m.Gauge != nil:
					return m.GetGauge().GetValue(), true
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount()), true
				}
			}
		}
		return 0, false
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_commands_total", map[string]string{"command": "get"}, 18},
		{"sluice_command_duration_seconds", map[string]string{"command": "get"}, 2},
		{"sluice_keys", nil, 2},
		{"sluice_keyspace_hits_total", nil, 17},
		{"sluice_keyspace_misses_total", nil, 1},
		{"sluice_connected_clients", nil, 1},
		{"sluice_ratelimit_decisions_total", map[string]string{"command": "rl.take", "result": "allowed"}, 1},
		{"sluice_ratelimit_decisions_total", map[string]string{"command": "rl.take", "result": "limited"}, 1},
	}
	for _, c := range checks {
		if got, ok := value(c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value("sluice_command_duration_seconds", map[string]string{"command": "append"}); ok {
		t.Error("a command never run exports a latency histogram")
	}
}
