package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemNetwork is an in-memory network for many nodes in one process: the
// twin of TCPNetwork for tests, as raft's InmemTransport is of its
// NetworkTransport. Hosts are named by IP addresses ("10.0.0.1"); each gets a
// Network from Host. Partition cuts hosts apart: gossip packets between them
// are dropped, dials fail, and open connections between them are closed at
// once (a reset, not a black hole, so tests do not wait out I/O timeouts).
type MemNetwork struct {
	mu        sync.Mutex
	listeners map[string]*memListener // by host:port
	gossip    map[string]*memGossip   // by host:port
	conns     map[*memConn]struct{}   // open connections, to cut on Partition
	group     map[string]int          // host → partition group; nil when whole
	nextPort  int                     // for port 0
}

// NewMemNetwork returns an empty in-memory network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{
		listeners: make(map[string]*memListener),
		gossip:    make(map[string]*memGossip),
		conns:     make(map[*memConn]struct{}),
		nextPort:  40000,
	}
}

// Host returns the Network of the node at ip (such as "10.0.0.1").
func (m *MemNetwork) Host(ip string) Network { return &memHost{net: m, host: ip} }

// Partition splits the hosts into groups that cannot reach each other. Hosts
// named in no group form one more group together, so Partition([]string{a})
// cuts a off from everyone else. A new Partition replaces the previous one.
func (m *MemNetwork) Partition(groups ...[]string) {
	m.mu.Lock()
	m.group = make(map[string]int)
	for i, g := range groups {
		for _, h := range g {
			m.group[h] = i + 1
		}
	}
	var cut []*memConn
	for c := range m.conns {
		if !m.reachLocked(c.local.host, c.remote.host) {
			cut = append(cut, c)
		}
	}
	m.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// Heal removes the partition.
func (m *MemNetwork) Heal() {
	m.mu.Lock()
	m.group = nil
	m.mu.Unlock()
}

func (m *MemNetwork) reachLocked(a, b string) bool {
	return a == b || m.group == nil || m.group[a] == m.group[b]
}

func (m *MemNetwork) reach(a, b string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reachLocked(a, b)
}

// bind reserves host:port (a free port when port is 0) and returns it.
func (m *MemNetwork) bindLocked(host string, port int, used func(string) bool) (memAddr, error) {
	if port == 0 {
		for used(net.JoinHostPort(host, strconv.Itoa(m.nextPort))) {
			m.nextPort++
		}
		port = m.nextPort
		m.nextPort++
	}
	a := memAddr{host, port}
	if used(a.String()) {
		return memAddr{}, fmt.Errorf("listen %s: address already in use", a)
	}
	return a, nil
}

// pipe returns two connected ends from local to remote, tracked so that a
// partition can cut them.
func (m *MemNetwork) pipe(local, remote memAddr) (dialer, acceptor *memConn) {
	a, b := net.Pipe()
	p := &memPair{net: m}
	dialer = &memConn{Conn: a, pair: p, local: local, remote: remote}
	acceptor = &memConn{Conn: b, pair: p, local: remote, remote: local}
	p.ends = [2]*memConn{dialer, acceptor}
	m.mu.Lock()
	m.conns[dialer] = struct{}{}
	m.conns[acceptor] = struct{}{}
	m.mu.Unlock()
	return dialer, acceptor
}

// memHost is one host's view of a MemNetwork.
type memHost struct {
	net  *MemNetwork
	host string
}

func (h *memHost) Listen(addr string) (net.Listener, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host == "" || host == "0.0.0.0" {
		host = h.host
	}
	m := h.net
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.bindLocked(host, port, func(s string) bool { return m.listeners[s] != nil })
	if err != nil {
		return nil, err
	}
	l := &memListener{net: m, addr: a, accept: make(chan net.Conn), done: make(chan struct{})}
	m.listeners[a.String()] = l
	return l, nil
}

func (h *memHost) Dial(ctx context.Context, addr string) (net.Conn, error) {
	m := h.net
	m.mu.Lock()
	l := m.listeners[addr]
	m.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "mem", Err: errors.New("connection refused")}
	}
	if !m.reach(h.host, l.addr.host) {
		return nil, &net.OpError{Op: "dial", Net: "mem", Err: errors.New("network unreachable (partition)")}
	}
	d, a := m.pipe(memAddr{h.host, 0}, l.addr)
	select {
	case l.accept <- a:
		return d, nil
	case <-l.done:
	case <-ctx.Done():
	}
	d.Close()
	a.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, &net.OpError{Op: "dial", Net: "mem", Err: errors.New("connection refused")}
}

func (h *memHost) Gossip(bindAddr string, port int, _ *log.Logger) (memberlist.NodeAwareTransport, error) {
	if bindAddr == "" || bindAddr == "0.0.0.0" {
		bindAddr = h.host
	}
	m := h.net
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.bindLocked(bindAddr, port, func(s string) bool { return m.gossip[s] != nil })
	if err != nil {
		return nil, err
	}
	g := &memGossip{
		net:     m,
		addr:    a,
		packets: make(chan *memberlist.Packet, 1024),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	m.gossip[a.String()] = g
	return g, nil
}

// memAddr is a host:port on a MemNetwork.
type memAddr struct {
	host string
	port int
}

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// memConn is one end of a connection; closing either end closes both, as a
// reset would.
type memConn struct {
	net.Conn
	pair          *memPair
	local, remote memAddr
}

// memPair is the two ends of one connection.
type memPair struct {
	net  *MemNetwork
	ends [2]*memConn
	once sync.Once
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) Close() error {
	p := c.pair
	p.once.Do(func() {
		p.net.mu.Lock()
		delete(p.net.conns, p.ends[0])
		delete(p.net.conns, p.ends[1])
		p.net.mu.Unlock()
		p.ends[0].Conn.Close()
		p.ends[1].Conn.Close()
	})
	return nil
}

// memListener accepts the connections dialed to its address.
type memListener struct {
	net    *MemNetwork
	addr   memAddr
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		l.net.mu.Lock()
		delete(l.net.listeners, l.addr.String())
		l.net.mu.Unlock()
		close(l.done)
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// memGossip is memberlist's transport on a MemNetwork: packets are
// delivered (or dropped, like UDP, when the receiver is full, closed or cut
// off) and streams are pipes.
type memGossip struct {
	net     *MemNetwork
	addr    memAddr
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func (g *memGossip) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		ip = g.addr.host
	}
	if port == 0 {
		port = g.addr.port
	}
	a := net.ParseIP(ip)
	if a == nil {
		return nil, 0, fmt.Errorf("cluster: advertise address %q is not an IP", ip)
	}
	return a, port, nil
}

func (g *memGossip) peer(addr string) *memGossip {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	p := g.net.gossip[addr]
	if p == nil || !g.net.reachLocked(g.addr.host, p.addr.host) {
		return nil
	}
	return p
}

func (g *memGossip) WriteTo(b []byte, addr string) (time.Time, error) {
	now := time.Now()
	p := g.peer(addr)
	if p == nil {
		return now, nil // lost, as UDP would lose it
	}
	pkt := &memberlist.Packet{Buf: append([]byte(nil), b...), From: g.addr, Timestamp: now}
	select {
	case p.packets <- pkt:
	case <-p.done:
	default:
	}
	return now, nil
}

func (g *memGossip) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return g.WriteTo(b, a.Addr)
}

func (g *memGossip) PacketCh() <-chan *memberlist.Packet { return g.packets }

func (g *memGossip) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	p := g.peer(addr)
	if p == nil {
		return nil, &net.OpError{Op: "dial", Net: "mem", Err: errors.New("no route to host")}
	}
	d, a := g.net.pipe(memAddr{g.addr.host, 0}, p.addr)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case p.streams <- a:
		return d, nil
	case <-p.done:
	case <-t.C:
	}
	d.Close()
	return nil, &net.OpError{Op: "dial", Net: "mem", Err: errors.New("connection refused")}
}

func (g *memGossip) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return g.DialTimeout(a.Addr, timeout)
}

func (g *memGossip) StreamCh() <-chan net.Conn { return g.streams }

func (g *memGossip) Shutdown() error {
	g.once.Do(func() {
		g.net.mu.Lock()
		delete(g.net.gossip, g.addr.String())
		g.net.mu.Unlock()
		close(g.done)
	})
	return nil
}

// splitHostPort splits host:port with a numeric port.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("cluster: bad port in %q", addr)
	}
	return host, port, nil
}
