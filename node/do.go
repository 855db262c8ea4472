package node

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// Error is an error reply from a command, such as "ERR syntax error" or
// "WRONGTYPE ...": the text a Redis client would see.
type Error string

func (e Error) Error() string { return string(e) }

// Do runs one command in-process, exactly as a RESP client's command would
// run (the same table, checks and handlers), and returns the reply as Go
// values: string for a status reply, []byte for a bulk string, int64,
// float64, bool, nil for a nil reply, []any for arrays and sets, and
// map[string]any for maps. An error reply is returned as an Error. Arguments
// may be string, []byte, int, int64, uint64, float64 or bool.
//
// Each call runs in a fresh session: MULTI, WATCH or CLIENT state does not
// carry over between calls, and no AUTH is needed.
func (n *Node) Do(ctx context.Context, args ...any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, Error("ERR empty command")
	}
	argv := make([][]byte, len(args))
	for i, a := range args {
		b, err := toArg(a)
		if err != nil {
			return nil, err
		}
		argv[i] = b
	}
	c := n.embedded.Get().(*Client)
	defer func() {
		c.reset()
		n.embedded.Put(c)
	}()
	var w valueWriter
	w.proto = 3
	c.ctx = ctx
	c.Exec(&w, argv)
	c.ctx = nil
	if !c.AwaitReplicas() {
		return nil, errNoReplicas
	}
	if e, ok := w.result.(Error); ok {
		if c.forwardErr != nil {
			return nil, fmt.Errorf("%w: %w", e, c.forwardErr)
		}
		return nil, e
	}
	return w.result, nil
}

// embeddedClients makes the sessions Do runs in.
func (n *Node) embeddedClients() *sync.Pool {
	return &sync.Pool{New: func() any {
		c := n.newClient(nil, "embedded", "embedded")
		c.authed = true
		c.proto = 3
		return c
	}}
}

// peerClients makes the sessions that run commands forwarded by other nodes:
// trusted (the cluster port authenticates peers), and never routed again.
func (n *Node) peerClients() *sync.Pool {
	return &sync.Pool{New: func() any {
		c := n.newClient(nil, "peer", "peer")
		c.authed = true
		c.peer = true
		return c
	}}
}

// reset returns an embedded session to its initial state.
func (c *Client) reset() {
	c.setMulti(nil)
	c.unwatch()
	c.replyOff, c.skipNext = false, false
	c.killed.Store(false)
	c.forwardErr = nil
}

func toArg(a any) ([]byte, error) {
	switch v := a.(type) {
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(nil, v, 10), nil
	case uint64:
		return strconv.AppendUint(nil, v, 10), nil
	case float64:
		return strconv.AppendFloat(nil, v, 'f', -1, 64), nil
	case bool:
		if v {
			return []byte("1"), nil
		}
		return []byte("0"), nil
	}
	return nil, fmt.Errorf("node: argument of type %T is not a string, []byte, number or bool", a)
}

// valueWriter builds a reply as Go values.
type valueWriter struct {
	proto  int
	result any
	stack  []frame
}

// frame is an array or map being filled.
type frame struct {
	items []any
	want  int
	isMap bool
}

func (w *valueWriter) add(v any) {
	for {
		if len(w.stack) == 0 {
			w.result = v
			return
		}
		top := &w.stack[len(w.stack)-1]
		top.items = append(top.items, v)
		if len(top.items) < top.want {
			return
		}
		w.stack = w.stack[:len(w.stack)-1]
		v = top.value()
	}
}

func (f *frame) value() any {
	if !f.isMap {
		return f.items
	}
	m := make(map[string]any, len(f.items)/2)
	for i := 0; i+1 < len(f.items); i += 2 {
		m[fmt.Sprint(stringOf(f.items[i]))] = f.items[i+1]
	}
	return m
}

func stringOf(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

func (w *valueWriter) open(n int, isMap bool) {
	want := n
	if isMap {
		want = 2 * n
	}
	if want == 0 {
		if isMap {
			w.add(map[string]any{})
		} else {
			w.add([]any{})
		}
		return
	}
	w.stack = append(w.stack, frame{want: want, isMap: isMap, items: make([]any, 0, want)})
}

func (w *valueWriter) SimpleString(s string) { w.add(s) }
func (w *valueWriter) Error(msg string)      { w.add(Error(msg)) }
func (w *valueWriter) Int(n int64)           { w.add(n) }
func (w *valueWriter) Bulk(b []byte)         { w.add(append([]byte(nil), b...)) }
func (w *valueWriter) BulkString(s string)   { w.add([]byte(s)) }
func (w *valueWriter) Null()                 { w.add(nil) }
func (w *valueWriter) NullArray()            { w.add(nil) }
func (w *valueWriter) Array(n int)           { w.open(n, false) }
func (w *valueWriter) Map(n int)             { w.open(n, true) }
func (w *valueWriter) Set(n int)             { w.open(n, false) }
func (w *valueWriter) Double(f float64)      { w.add(f) }
func (w *valueWriter) Bool(b bool)           { w.add(b) }
func (w *valueWriter) Verbatim(_ string, s []byte) {
	w.add(string(s))
}
func (w *valueWriter) Push(n int)        { w.open(n, false) }
func (w *valueWriter) SetProtocol(v int) { w.proto = v }
