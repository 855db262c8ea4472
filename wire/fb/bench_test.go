package fb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/resp"
)

// The benchmarks' data: 64 keys with 64-byte values, as cache entries
// (fresh for an hour) so that GET and CACHE.GET read the same keys.
const (
	benchKeys  = 64
	benchValue = 64
)

func benchNode(b testing.TB) (*node.Node, []string) {
	b.Helper()
	n, err := node.New(node.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close(context.Background()) })
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%04d", i)
		val := make([]byte, benchValue)
		for j := range val {
			val[j] = byte('a' + (i+j)%26)
		}
		if err := n.CacheSet(context.Background(), keys[i], val, time.Hour, 0); err != nil {
			b.Fatal(err)
		}
	}
	return n, keys
}

// BenchmarkServerBatch is the server's work for one request of 64
// operations, without the network: verify the frame, run the operations
// through the node's command table, build the response frame. The
// allocations are the server path's.
func BenchmarkServerBatch(b *testing.B) {
	for _, tc := range []struct {
		name string
		add  func(*Batch, string)
	}{
		{"GET", func(b *Batch, k string) { b.Get(k) }},
		{"CACHE.GET", func(b *Batch, k string) { b.CacheGet(k, 0) }},
		{"THROTTLE", func(b *Batch, k string) {
			b.Throttle("rl:"+k, node.Limit{Rate: 1 << 20, Period: time.Hour}, 1)
		}},
		{"SET", func(b *Batch, k string) { b.Set(k, make([]byte, benchValue), 0) }},
	} {
		b.Run(tc.name+"x64", func(b *testing.B) {
			n, keys := benchNode(b)
			sess, err := n.Connect(nil, "bench", "bench")
			if err != nil {
				b.Fatal(err)
			}
			var r runner
			r.init(&Server{node: n, maxFrame: DefaultMaxFrame}, sess)
			var batch Batch
			for _, k := range keys {
				tc.add(&batch, k)
			}
			msg := batch.encode(1)[4:]
			out := make([]byte, 0, 64<<10)
			out, _ = r.handle(out, msg)
			_, res, err := verifyResponse(out[4:], benchKeys, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range res {
				if err := (&Batch{frame: out[4:], res: res}).Result(i).Err(); err != nil {
					b.Fatalf("operation %d: %v", i, err)
				}
			}
			b.SetBytes(int64(len(msg) + len(out)))
			b.ReportAllocs()
			for b.Loop() {
				out, _ = r.handle(out[:0], msg)
			}
			b.ReportMetric(float64(b.N*benchKeys)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkServerBatchParallel is BenchmarkServerBatch's 64 GETs run by a
// session per goroutine on every core, where the per-operation accounting
// the node shares between cores (the command's call count, its latency
// histogram) costs the most.
func BenchmarkServerBatchParallel(b *testing.B) {
	n, keys := benchNode(b)
	var batch Batch
	for _, k := range keys {
		batch.Get(k)
	}
	msg := batch.encode(1)[4:]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		sess, err := n.Connect(nil, "bench", "bench")
		if err != nil {
			b.Error(err)
			return
		}
		var r runner
		r.init(&Server{node: n, maxFrame: DefaultMaxFrame}, sess)
		out := make([]byte, 0, 64<<10)
		for pb.Next() {
			out, _ = r.handle(out[:0], msg)
		}
	})
}

// BenchmarkClientRead reads the 64 values out of a received response frame
// through Result.Value: the client's read path, which must not allocate.
func BenchmarkClientRead(b *testing.B) {
	batch := receivedBatch(b)
	b.ReportAllocs()
	var sum int
	for b.Loop() {
		for i := range benchKeys {
			v, _ := batch.Result(i).Value()
			sum += len(v)
		}
	}
	if sum != b.N*benchKeys*benchValue {
		b.Fatalf("read %d bytes", sum)
	}
}

// BenchmarkClientBatch is the client's work per batch of 64 GETs, without
// the network: add the operations, encode the request, verify the response
// and index its results.
func BenchmarkClientBatch(b *testing.B) {
	recv := receivedBatch(b)
	_, keys := benchNode(b)
	var batch Batch
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		for _, k := range keys {
			batch.Get(k)
		}
		batch.encode(1)
		batch.frame = append(batch.frame[:0], recv.frame...)
		var err error
		if _, batch.res, err = verifyResponse(batch.frame, benchKeys, batch.res[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// receivedBatch returns a batch of 64 GETs holding the server's response.
func receivedBatch(b *testing.B) *Batch {
	n, keys := benchNode(b)
	sess, err := n.Connect(nil, "bench", "bench")
	if err != nil {
		b.Fatal(err)
	}
	var r runner
	r.init(&Server{node: n, maxFrame: DefaultMaxFrame}, sess)
	var batch Batch
	for _, k := range keys {
		batch.Get(k)
	}
	out, _ := r.handle(nil, batch.encode(1)[4:])
	batch.frame = out[4:]
	if _, batch.res, err = verifyResponse(batch.frame, benchKeys, nil); err != nil {
		b.Fatal(err)
	}
	return &batch
}

// sides starts one node served over both protocols and returns a
// FlatBuffers client and a go-redis client of it.
func sides(b *testing.B) (*Client, *redis.Client, []string) {
	n, keys := benchNode(b)
	fbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	respLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	fs, err := NewServer(n, Config{Listener: fbLn, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	rs, err := resp.New(n, resp.Config{Listener: respLn, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	n.Attach(fs)
	n.Attach(rs)
	n.Start()
	fc, err := Dial(fs.Addr())
	if err != nil {
		b.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr(), PoolSize: 64, DisableIdentity: true})
	b.Cleanup(func() {
		fc.Close()
		rc.Close()
	})
	return fc, rc, keys
}

// Concurrency of the network benchmarks: one goroutine (latency bound) and
// sixteen (throughput bound; the client's two connections pipeline them,
// go-redis gives each its own connection).
var concurrency = []int{1, 16}

// BenchmarkMGET64 reads the same 64 keys as one FlatBuffers batch of 64
// GETs and as one MGET through go-redis, from the same node in the same
// run. It reports keys per second and each side's p99 latency per batch;
// allocs/op counts client and server together (one process).
func BenchmarkMGET64(b *testing.B) {
	fc, rc, keys := sides(b)
	for _, conc := range concurrency {
		b.Run(fmt.Sprintf("fb/conc=%d", conc), func(b *testing.B) {
			load(b, conc, benchKeys, func() func(context.Context) error {
				var batch Batch
				return func(ctx context.Context) error {
					batch.Reset()
					for _, k := range keys {
						batch.Get(k)
					}
					if err := fc.Do(ctx, &batch); err != nil {
						return err
					}
					for i := range keys {
						if v, ok := batch.Result(i).Value(); !ok || len(v) != benchValue {
							return fmt.Errorf("key %d: %q", i, v)
						}
					}
					return nil
				}
			})
		})
		b.Run(fmt.Sprintf("resp/conc=%d", conc), func(b *testing.B) {
			load(b, conc, benchKeys, func() func(context.Context) error {
				return func(ctx context.Context) error {
					vals, err := rc.MGet(ctx, keys...).Result()
					if err != nil {
						return err
					}
					for i, v := range vals {
						if s, ok := v.(string); !ok || len(s) != benchValue {
							return fmt.Errorf("key %d: %v", i, v)
						}
					}
					return nil
				}
			})
		})
	}
}

// BenchmarkGET reads one key: a FlatBuffers batch of one GET against a
// go-redis GET.
func BenchmarkGET(b *testing.B) {
	fc, rc, keys := sides(b)
	for _, conc := range concurrency {
		b.Run(fmt.Sprintf("fb/conc=%d", conc), func(b *testing.B) {
			load(b, conc, 1, func() func(context.Context) error {
				var batch Batch
				batch.Get(keys[0])
				return func(ctx context.Context) error {
					if err := fc.Do(ctx, &batch); err != nil {
						return err
					}
					if v, ok := batch.Result(0).Value(); !ok || len(v) != benchValue {
						return fmt.Errorf("GET: %q", v)
					}
					return nil
				}
			})
		})
		b.Run(fmt.Sprintf("resp/conc=%d", conc), func(b *testing.B) {
			load(b, conc, 1, func() func(context.Context) error {
				return func(ctx context.Context) error {
					v, err := rc.Get(ctx, keys[0]).Result()
					if err == nil && len(v) != benchValue {
						err = fmt.Errorf("GET: %q", v)
					}
					return err
				}
			})
		})
	}
}

// load runs b.N calls over conc goroutines, each with its own call made by
// newCall, and reports keys per second (keys per call × calls / time) and
// the p50 and p99 latency of a call.
func load(b *testing.B, conc, keys int, newCall func() func(context.Context) error) {
	ctx := context.Background()
	calls := make([]func(context.Context) error, conc)
	for i := range calls {
		calls[i] = newCall()
		if err := calls[i](ctx); err != nil { // warm the connections
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	failed := make(chan error, conc)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				start := time.Now()
				if err := call(ctx); err != nil {
					failed <- err
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(failed)
	if err := <-failed; err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N*keys)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
}
