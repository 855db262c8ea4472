package resp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/sluicedb/sluice/node"
)

// benchNode returns a node holding key = "value".
func benchNode(b *testing.B) *node.Node {
	n, err := node.New(node.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := n.Do(context.Background(), "SET", "key", "value"); err != nil {
		b.Fatal(err)
	}
	return n
}

func getBatch(depth int) []byte {
	var in bytes.Buffer
	for range depth {
		encode(&in, "GET", "key")
	}
	return in.Bytes()
}

// BenchmarkExecPipeline reads and runs pipelined GETs without a socket: the
// reader, the node's Exec and the writer, per command.
func BenchmarkExecPipeline(b *testing.B) {
	for _, proto := range []int{2, 3} {
		b.Run("RESP"+strconv.Itoa(proto), func(b *testing.B) {
			n := benchNode(b)
			cl, err := n.Connect(nil, "bench", "bench")
			if err != nil {
				b.Fatal(err)
			}
			in := getBatch(100)
			src := bytes.NewReader(in)
			r := newReader()
			w := &writer{b: make([]byte, 0, 64<<10)}
			w.SetProtocol(proto)
			b.ReportAllocs()
			b.SetBytes(int64(len(in) / 100))
			for b.Loop() {
				args, _ := r.next()
				for args == nil {
					w.b = w.b[:0] // the batch's replies are written
					if r.fill(src) != nil {
						src.Reset(in)
					}
					args, _ = r.next()
				}
				cl.Exec(w, args)
			}
		})
	}
}

// BenchmarkServerGET runs GETs through a server over loopback TCP, one
// command per op, at pipeline depths 1 (request-reply) and 100. The client
// allocates nothing, so the allocations reported are the server's.
func BenchmarkServerGET(b *testing.B) {
	for _, depth := range []int{1, 16, 100} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			_, s := startNode(b, node.Config{})
			benchGET(b, dial(b, s), depth)
		})
	}
}

// BenchmarkServerGETTLS is BenchmarkServerGET over TLS, where every reply
// is written by the background writer. The allocations reported are the
// client's and the server's.
func BenchmarkServerGETTLS(b *testing.B) {
	ts := newTLSSetup(b)
	for _, depth := range []int{1, 16, 100} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			_, s := startTLSNode(b, ts, false, node.Config{})
			benchGET(b, dialTLS(b, s, ts.clientConfig(false)), depth)
		})
	}
}

func benchGET(b *testing.B, c *client, depth int) {
	if got := c.do("SET", "key", "value"); got != "+OK\r\n" {
		b.Fatal(got)
	}
	batch := getBatch(depth)
	reply := make([]byte, depth*len("$5\r\nvalue\r\n"))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%depth == 0 {
			if _, err := c.nc.Write(batch); err != nil {
				b.Fatal(err)
			}
		}
		i++
		if i%depth == 0 {
			if _, err := io.ReadFull(c.nc, reply); err != nil {
				b.Fatal(err)
			}
		}
	}
	if i%depth != 0 { // the last batch's replies
		io.ReadFull(c.nc, reply)
	}
}

// BenchmarkWriter encodes a mix of replies: a GET, an MGET of three, a
// CL.THROTTLE, a double, a map entry and a status.
func BenchmarkWriter(b *testing.B) {
	val := []byte("a value of some thirty-two bytes")
	for _, proto := range []int{2, 3} {
		b.Run("RESP"+strconv.Itoa(proto), func(b *testing.B) {
			w := &writer{b: make([]byte, 0, 4096)}
			w.SetProtocol(proto)
			b.ReportAllocs()
			for b.Loop() {
				w.b = w.b[:0]
				w.Bulk(val)
				w.Array(3)
				w.Bulk(val)
				w.Null()
				w.Bulk(val)
				w.Array(5)
				w.Int(0)
				w.Int(11)
				w.Int(10)
				w.Int(-1)
				w.Int(2)
				w.Double(3.14)
				w.Map(1)
				w.BulkString("proto")
				w.Int(3)
				w.SimpleString("OK")
			}
			b.SetBytes(int64(len(w.b)))
		})
	}
}

// BenchmarkReaderInline reads quoted inline requests, as telnet and
// redis-cli's inline mode send them.
func BenchmarkReaderInline(b *testing.B) {
	var in bytes.Buffer
	for range 100 {
		in.WriteString(`SET "a key" "a \"quoted\" value\n"` + "\r\n")
	}
	src := bytes.NewReader(in.Bytes())
	r := newReader()
	b.ReportAllocs()
	for b.Loop() {
		args, _ := r.next()
		for args == nil {
			if r.fill(src) != nil {
				src.Reset(in.Bytes())
			}
			args, _ = r.next()
		}
	}
}
