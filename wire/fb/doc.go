// Package fb is Sluice's FlatBuffers API (DESIGN §4.3): a second listener
// for hot reads, and its Go client. A request carries a batch of
// operations (GET, CACHE.GET, RL.TAKE as THROTTLE, SET for warming, AUTH)
// and its response carries one result per operation, in order. The client
// reads values straight out of the received frame.
//
//	srv, err := fb.NewServer(n, fb.Config{Addr: "127.0.0.1:6380"})
//	n.Attach(srv) // n.Start serves it, n.Close drains it
//
//	c, err := fb.Dial("127.0.0.1:6380")
//	var b fb.Batch
//	i := b.Get("user:42")
//	err = c.Do(ctx, &b)
//	v, ok := b.Result(i).Value() // a slice of the response frame
//
// # Wire format
//
// The schema is sluice.fbs in this directory; other languages generate
// their code from it with flatc. Each frame, either way, is a 4-byte
// little-endian length followed by one FlatBuffers message (FlatBuffers'
// size-prefixed form): a Request from the client, a Response from the
// server. A request is at most Config.MaxFrame bytes (DefaultMaxFrame, 64
// MiB) and carries at most MaxOps operations; the server builds no
// response larger than MaxFrame either: a value that would not fit becomes
// an error result, and a response that still would not fit is refused as
// a whole. Requests on one connection are pipelined: a client sends them
// without waiting, the server runs them in order and answers each with a
// Response carrying the request's id.
//
// # Untrusted frames
//
// FlatBuffers' Go runtime trusts its buffers: an offset pointing outside
// panics or reads the wrong bytes, and it has no verifier. This package
// verifies every frame, on both sides, before the generated accessors read
// it (verify.go says exactly what is checked). A length over the limit, a
// truncated frame or an offset outside it gets an error Response (id 0 when
// the id could not be read) and the connection is closed; other clients
// are not affected. An operation kind the server does not know is an
// error result, so that newer clients can probe older servers.
//
// # Security
//
// The port is guarded as the RESP port is. While the default user has a
// password (requirepass, or ACL users), a connection authenticates with an
// Auth operation (the password in value, an ACL user name in key) before
// anything else: until it does, every other operation fails with NOAUTH
// and its frames may be at most 16 KiB, as Redis limits unauthenticated
// clients. The node checks the password, exactly as AUTH on the RESP port,
// and every operation against the user's ACL permissions on its command
// and key (a user allowed only RL.TAKE on rl:* keys can throttle, not read
// values). Protected mode (Config.DisableProtectedMode) refuses clients of
// other hosts while the default user has no password. The Go client sends
// Auth as the first request on each connection when Options.Password is
// set.
//
// With Config.TLSCertFile and TLSKeyFile the server speaks TLS (1.2 and
// later), and only TLS, with the RESP port's certificate handling
// (wire/internal/tlsconf): the files are read again when they change or on
// Server.ReloadTLS, and with TLSCAFile every client must present a
// certificate the CA signed. sluice serves it on --fb-tls-port, beside the
// plaintext --fb-port or instead of it (--fb-port 0). The Go client speaks
// TLS with Options.TLS. A client certificate does not replace the
// password.
//
// # Server
//
// Each connection is served by one goroutine: it reads what the client
// has sent, runs every complete request in it and writes their responses
// in one write. Each operation runs as the command it mirrors, through the
// node's command table in the connection's node session (node.Client.Exec),
// so it behaves exactly as over RESP: argument checks and error texts,
// ACL, the OOM check, cluster routing (a key another node owns is
// forwarded to it), command statistics. Its arguments are slices of the
// request frame, and its reply is written straight into the response by a
// node.Writer (reply, in request.go): a value is copied once, from the
// store into the response. Responses are built with one reused
// flatbuffers.Builder per connection, so a request allocates nothing once
// the buffers have grown to its size.
//
// A connection is a client of the node like a RESP one: it counts against
// maxclients, CLIENT LIST shows it, CLIENT KILL and deleting its ACL user
// close it (after the request it is running), and the idle timeout
// applies. Close drains as the RESP server does: each connection finishes
// the request it is running and its responses are written.
//
// # Client
//
// A Client keeps a few connections (Options.Conns) and is safe for
// concurrent use: each goroutine runs its own Batch, and requests from
// many goroutines share the connections, pipelined. On an idle connection
// the caller writes its request itself; while others are in flight, a
// flusher goroutine writes whatever requests have queued in one system
// call. No goroutine reads a connection: a caller waiting for its response
// reads it itself while no other caller is reading (leader and followers),
// hands every response it reads to the batch it answers, waking that
// batch's goroutine, and passes the reading on once its own has arrived.
// A lone caller so never switches goroutines. A connection unused for a
// while is checked for the server's close before it takes a request. A
// Batch is reused: it keeps its builder,
// its received frame and its result index, so Do and reading results
// allocate nothing in steady state. A Result reads its fields from the
// frame in place; Result.Value returns a slice of the frame, valid until
// the batch is Reset or run again.
//
// In a cluster the client routes each key to its owner (route.go): every
// connection asks for the slot table as it opens (a Slots operation, which
// also makes the server answer "MOVED <slot> <host:port>" on it for keys
// another node owns, instead of forwarding them), a batch is split into
// one request per owner, and operations answered MOVED are sent to the
// node named after the table is refreshed. Connections that never ask for
// the table are served by forwarding, as plain RESP clients are.
package fb

//go:generate flatc --go --go-namespace schema --gen-onefile -o internal/schema sluice.fbs
//go:generate gofmt -w internal/schema/sluice_generated.go
