package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", 100000: "100,000"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	id := func(v float64) float64 { return v }
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in, id); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestGCLine(t *testing.T) {
	line := "gc 12 @8.533s 3%: 0.12+9.4+0.070 ms clock, 0.25+0.50/4.9/2.1+0.14 ms cpu, 1051->1053->901 MB, 1055 MB goal, 0 MB stacks, 0 MB globals, 2 P"
	m := gcLine.FindStringSubmatch(line)
	if m == nil || m[1] != "3" || m[2] != "0.12" || m[3] != "9.4" || m[4] != "0.070" {
		t.Fatalf("gcLine matched %q", m)
	}
	if gcLine.MatchString(`time=2026-01-01 level=WARN msg="gc 1"`) {
		t.Fatal("gcLine matched a log line")
	}
	cycles := []gcCycle{{stw: 3 * time.Millisecond}, {stw: time.Millisecond}, {stw: 2 * time.Millisecond}}
	if got := pauseQuantile(cycles, 0.5, stw); got != 2*time.Millisecond {
		t.Errorf("p50 = %v", got)
	}
	if got := pauseQuantile(cycles, 0.99, stw); got != 3*time.Millisecond {
		t.Errorf("p99 = %v", got)
	}
}

func TestBenchLine(t *testing.T) {
	m := benchLine.FindStringSubmatch("BenchmarkExecPipeline/RESP2-2   \t 4088168\t       293.6 ns/op\t  75.30 MB/s\t       0 B/op\t       0 allocs/op")
	if m == nil || m[1] != "BenchmarkExecPipeline/RESP2" || m[2] != "293.6" || m[3] != "0" || m[4] != "0" {
		t.Fatalf("benchLine matched %q", m)
	}
}

// sampleReport is a report with one of everything.
func sampleReport() *report {
	s := func(perSec float64, p99 time.Duration) sample {
		return sample{perSec: perSec, p50: p99 / 3, p99: p99, ops: perSec * 3, cpu: time.Second, mallocs: 10, gcs: 0, switches: 100}
	}
	w := workloads(nil, nil, "sha", 1000)
	return &report{
		started: time.Now(), reps: 2, memReps: 1, runTime: time.Second, keys: 1000,
		results: []*result{
			{w: w[0], a: []sample{s(90, 2*time.Millisecond), s(100, 2*time.Millisecond)}, b: []sample{s(100, time.Millisecond), s(100, time.Millisecond)}},
			{w: w[6], a: []sample{s(400, time.Millisecond), s(420, time.Millisecond)}, b: []sample{s(100, time.Millisecond), s(90, time.Millisecond)}},
		},
		mem: &memResult{keys: 1000, samples: map[string][]memSample{
			"sluice": {{rss0: 10 << 20, rss1: 150 << 20, used: 130 << 20}},
			"redis":  {{rss0: 10 << 20, rss1: 170 << 20, used: 160 << 20}},
		}},
		big: &bigResult{keys: 1000, cycles: []gcCycle{{phase: "load", stw: 200 * time.Microsecond}},
			loadPerSec: map[string]float64{}, rss0: map[string]int64{}, rss1: map[string]int64{}, steady: map[string]sample{}},
		goBench: []goBench{{pkg: "node", name: "BenchmarkExecGet", nsPerOp: 150}},
	}
}

func TestReport(t *testing.T) {
	r := sampleReport()
	md := string(r.markdown("latest.svg", "analysis.md"))
	for _, want := range []string{
		"| SET, 50 clients | 95 ops/s | 100 ops/s | 0.95× (0.90–1.00) | ≥ 1.0×, p99 no worse | **missed**: throughput 5% short, p99 100% higher |",
		"| CL.THROTTLE vs GCRA Lua (EVALSHA), 50 clients, -P 16 | Sluice CL.THROTTLE 410 ops/s | Redis EVALSHA 95 ops/s | 4.32× (4.00–4.67) | ≥ 3× | met |",
		"RSS after loading | 150.0 MiB | 170.0 MiB | 0.88× |",
		"| GC with 1k keys: stop-the-world pause p99 | 0.200 ms |",
		"[analysis.md](analysis.md)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// The chart is well-formed XML with a bar per ratio.
	svg := r.chart()
	d := xml.NewDecoder(bytes.NewReader(svg))
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if want := 1 + 3; rects != want { // the background, two workloads, memory
		t.Errorf("chart has %d rects, want %d", rects, want)
	}
}
