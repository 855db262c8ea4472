package fb

import (
	"bytes"
	"context"
	"math"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/wire/fb/internal/schema"
)

// Cluster routing in the client. Every connection asks for the slot table
// when it opens (a Slots operation, which also makes the server answer
// MOVED on it instead of forwarding), and the client keeps the newest table
// it has seen (by epoch). Do looks up each key's slot (CRC16 and hash tags,
// as Redis Cluster) in it: a batch whose keys one node owns goes there
// whole, as one request; otherwise it is split into one request per owner,
// sent all at once, and the results are read from each response in place
// as usual (Batch.where says which). An operation answered "MOVED <slot>
// <addr>" did not run; it is sent to addr, after the table is refreshed
// from that node. A node outside a cluster refuses Slots, and the client
// then sends everything to the address it dialled.

// routes is a slot table as the client uses it.
type routes struct {
	epoch uint64
	owner [ring.Slots]uint16 // index in pools, or noOwner
	pools []*pool
}

// noOwner marks a slot with no usable owner address; its keys go to the
// node dialled, which forwards them.
const noOwner = math.MaxUint16

// maxRedirects is how many times Do follows MOVED for one batch.
const maxRedirects = 3

// seedPool is the pool of the address dialled.
func (c *Client) seedPool() *pool {
	if p := c.seedP.Load(); p != nil {
		return p
	}
	p := c.pool(c.seed)
	c.seedP.Store(p)
	return p
}

// poolOf returns the pool of slot owner index o.
func (c *Client) poolOf(rt *routes, o uint16) *pool {
	if o == noOwner {
		return c.seedPool()
	}
	return rt.pools[o]
}

// target returns the pool of the node that owns every key of b, or nil
// when they are owned by different nodes.
func (c *Client) target(rt *routes, b *Batch) *pool {
	if rt == nil {
		return c.seedPool()
	}
	first := rt.owner[ring.KeySlot(b.key(0))]
	for i := 1; i < len(b.ops); i++ {
		if rt.owner[ring.KeySlot(b.key(i))] != first {
			return nil
		}
	}
	return c.poolOf(rt, first)
}

// sub returns sub-batch i of b, empty, making it on first use.
func (b *Batch) sub(i int) *Batch {
	for len(b.subs) <= i {
		b.subs = append(b.subs, &Batch{})
	}
	s := b.subs[i]
	s.Reset()
	return s
}

// doSplit sends b's operations to their owners, one request each, and
// waits for all of them.
func (c *Client) doSplit(ctx context.Context, rt *routes, b *Batch) error {
	b.where = b.where[:0]
	b.subPools = b.subPools[:0]
	for i := range b.ops {
		p := c.poolOf(rt, rt.owner[ring.KeySlot(b.key(i))])
		si := indexOf(b.subPools, p)
		if si < 0 {
			si = len(b.subPools)
			b.subPools = append(b.subPools, p)
			b.sub(si)
		}
		b.where = append(b.where, loc{int32(si), int32(b.subs[si].copyOp(b, i))})
	}
	return c.runSubs(ctx, b, 0)
}

func indexOf(ps []*pool, p *pool) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

// runSubs sends the sub-batches from on, each on a connection of its pool,
// and waits for every one it sent; it returns the first error.
func (c *Client) runSubs(ctx context.Context, b *Batch, from int) error {
	var first error
	sent := b.sent[:0]
	for si := from; si < len(b.subPools); si++ {
		cc, err := b.subPools[si].pick(ctx)
		if err == nil {
			err = cc.start(ctx, b.subs[si], c.opts.MaxFrame)
		}
		if err != nil {
			first = err
			break
		}
		sent = append(sent, cc)
	}
	for k, cc := range sent {
		if err := cc.wait(ctx, b.subs[from+k]); err != nil && first == nil {
			first = err
		}
	}
	b.sent = sent[:0]
	clear(sent)
	return first
}

// redirect sends the operations answered MOVED to the nodes named, after
// refreshing the table from the first of them, up to maxRedirects times.
func (c *Client) redirect(ctx context.Context, b *Batch) error {
	if !b.anyErrs() {
		return nil // no result is an error: none is MOVED
	}
	for range maxRedirects {
		from := len(b.subPools)
		var refreshed bool
		for i := range b.ops {
			addr, ok := b.Result(i).moved()
			if !ok {
				continue
			}
			p := c.pool(addr)
			if !refreshed {
				refreshed = true
				c.refreshFrom(ctx, p)
			}
			if len(b.where) == 0 {
				for j := range b.ops {
					b.where = append(b.where, loc{-1, int32(j)})
				}
			}
			si := indexOf(b.subPools[from:], p)
			if si < 0 {
				si = len(b.subPools) - from
				b.subPools = append(b.subPools, p)
				b.sub(from + si)
			}
			si += from
			b.where[i] = loc{int32(si), int32(b.subs[si].copyOp(b.origin(i)))}
		}
		if !refreshed {
			return nil
		}
		if err := c.runSubs(ctx, b, from); err != nil {
			return err
		}
	}
	return nil
}

// anyErrs reports whether a result of the batch, in its own frame or its
// sub-batches, may be an error.
func (b *Batch) anyErrs() bool {
	if len(b.where) == 0 {
		return b.errs
	}
	for si := range b.subPools {
		if b.subs[si].errs {
			return true
		}
	}
	return b.errs
}

// origin returns the batch and index operation i was last sent as.
func (b *Batch) origin(i int) (*Batch, int) {
	if len(b.where) == 0 || b.where[i].sub < 0 {
		return b, i
	}
	w := b.where[i]
	return b.subs[w.sub], int(w.idx)
}

// moved reports whether the result is a MOVED error, and the address it
// names.
func (r Result) moved() (string, bool) {
	if r.frame == nil {
		return "", false
	}
	t := r.table()
	msg := t.Error()
	const prefix = "MOVED "
	if !bytes.HasPrefix(msg, []byte(prefix)) {
		return "", false
	}
	_, addr, ok := bytes.Cut(msg[len(prefix):], []byte(" "))
	if !ok || len(addr) == 0 || string(addr) == unknownAddr {
		return "", false
	}
	return string(addr), true
}

// refreshFrom asks the node of p for the slot table and learns it. One
// refresh runs at a time; a caller that waited for another's refresh
// takes its result. Failures are ignored: the MOVED being followed names
// the node to go to anyway.
func (c *Client) refreshFrom(ctx context.Context, p *pool) {
	before := c.routes.Load()
	c.refresh.Lock()
	defer c.refresh.Unlock()
	if c.routes.Load() != before {
		return
	}
	cc, err := p.pick(ctx)
	if err != nil {
		return
	}
	var b Batch
	b.slots()
	if cc.do(ctx, &b, c.opts.MaxFrame) == nil {
		c.learn(&b)
	}
}

// learn takes the slot table from a response to a Slots operation, when it
// has one newer than the client's. A table whose ranges do not fit the
// slots or name no address is ignored.
func (c *Client) learn(b *Batch) {
	if b.refused || len(b.frame) == 0 || b.Result(len(b.ops)-1).Err() != nil {
		return
	}
	var resp schema.Response
	resp.Init(b.frame, flatbuffers.GetUOffsetT(b.frame))
	n := resp.SlotRangesLength()
	if n == 0 {
		return
	}
	epoch := resp.SlotEpoch()
	if cur := c.routes.Load(); cur != nil && epoch <= cur.epoch {
		return
	}
	rt := &routes{epoch: epoch}
	for i := range rt.owner {
		rt.owner[i] = noOwner
	}
	addrs := resp.SlotAddrsLength()
	if addrs >= noOwner {
		return
	}
	index := make([]uint16, addrs) // address index to pool index
	for i := range addrs {
		addr := string(resp.SlotAddrs(i))
		if addr == "" || addr == unknownAddr {
			index[i] = noOwner
			continue
		}
		p := c.pool(addr)
		k := indexOf(rt.pools, p)
		if k < 0 {
			k = len(rt.pools)
			rt.pools = append(rt.pools, p)
		}
		index[i] = uint16(k)
	}
	var g schema.SlotRange
	for i := range n {
		resp.SlotRanges(&g, i)
		start, end, a := int(g.Start()), int(g.End()), int(g.Addr())
		if start > end || end >= ring.Slots || a >= addrs {
			return
		}
		for s := start; s <= end; s++ {
			rt.owner[s] = index[a]
		}
	}
	for {
		cur := c.routes.Load()
		if cur != nil && epoch <= cur.epoch {
			return
		}
		if c.routes.CompareAndSwap(cur, rt) {
			return
		}
	}
}

// epoch is the epoch of the slot table the client routes by, 0 when it
// has none (the node it dialled is not in a cluster, or does not let it
// read the table): then every request goes to that node.
func (c *Client) epoch() uint64 {
	if rt := c.routes.Load(); rt != nil {
		return rt.epoch
	}
	return 0
}

// owner returns the address of the node the client sends key to.
func (c *Client) owner(key string) string {
	rt := c.routes.Load()
	if rt == nil {
		return c.seed
	}
	return c.poolOf(rt, rt.owner[ring.KeySlot([]byte(key))]).addr
}
