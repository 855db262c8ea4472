// Package resp serves a node over the Redis protocol, RESP2 and RESP3, so
// that redis-cli and every Redis client library talk to Sluice.
//
//	srv, err := resp.New(n, resp.Config{Addr: "127.0.0.1:6379"})
//	n.Attach(srv) // n.Start serves it, n.Close drains it
//
// On Linux, plaintext connections are served by a few event loops
// (Config.EventLoops; by default one per P), as Redis serves its
// clients: each waits on many sockets with epoll, reads what a ready client sent, runs its requests and writes the replies,
// then goes on to the next, so that an unpipelined request costs one read
// and one write and no goroutine switch. TLS connections, and connections
// that must wait (a client reading its replies too slowly, the end of a
// connection), are served by their own goroutine (loop_linux.go).
//
// A connection reads whatever the client has sent, runs each complete
// request in order through node.Client.Exec, and writes the replies of the
// whole batch at once, so pipelining costs one read and one write per batch
// at any depth. It behaves as Redis 7.0 does where a client can tell:
// the request syntax and its protocol errors ("-ERR Protocol error: ...",
// then the connection closes) follow networking.c byte for byte, inline
// requests are split with Redis's quoting rules, commands pipelined after
// QUIT are not run, and a client over maxclients gets "-ERR max number of
// clients reached". The limits (proto-max-bulk-len, the argument count, the
// output buffer limit, the idle timeout) are read from node.Node.Limits for
// every batch, so CONFIG SET applies at once. While a password is required
// and the client has not given it, Redis's tighter limits apply: at most 10
// arguments and bulks of at most 16384 bytes. A bulk length over the limit
// is rejected before anything is allocated for it, and the input buffer
// only ever grows with data that has arrived.
//
// # Security
//
// With Config.TLSCertFile and TLSKeyFile a server speaks TLS only, and with
// TLSCAFile it requires client certificates signed by that CA. A node
// serves TLS and plaintext side by side with two Servers, one per port, as
// Redis's port and tls-port: each port means one thing, and either can be
// firewalled or turned off alone. The files are read again when they
// change, so certificates rotate without a restart (Server.ReloadTLS, for a
// SIGHUP handler, does it at once). Over TLS every write goes through the
// background writer, as a TLS write cannot be attempted without waiting.
//
// Protected mode, on unless Config.DisableProtectedMode, refuses clients
// of other hosts with Redis's "-DENIED ..." error while the node has no
// password, judged as each client connects.
//
// Beyond Redis's limits, a request that has started to arrive must keep
// arriving, even with the idle timeout off: a client that sends nothing for
// 20 seconds in the middle of one, or trickles it at less than 500 bytes a
// second after its first 20 seconds, is disconnected. A TLS handshake has
// 10 seconds. The request being read is bounded as a whole, at 1 GiB
// (Redis's client-query-buffer-limit), as each of its bulks is by
// proto-max-bulk-len. A connection then costs the server about 25 KiB plus
// a small multiple of what its client has sent, within those bounds.
//
// Out-of-band pushes (client-side caching invalidations) may be sent from
// any goroutine with node.Conn.Send; they are ordered after the replies
// already produced and never split one. Neither they nor a client that
// stops reading can block the server: output is written by the goroutine
// running the connection (its own, or its event loop) when the socket takes
// it at once and by a background writer otherwise; a client that reads slowly is throttled, and one whose pending
// output passes the output buffer limit is disconnected.
//
// # What redcon is used for
//
// tidwall/redcon is the project's RESP library. This package uses its reply
// encoders (AppendString, AppendError, AppendInt, AppendBulk,
// AppendBulkString, AppendArray, AppendNull): they append RESP2 framing
// straight into a connection's output buffer without allocating, and the
// RESP3 types and the RESP2 degradations Redis applies are written on top
// of them (writer.go). It does not use redcon's Reader or its server loop:
//
//   - the Reader has no limit on bulk lengths, argument counts or line
//     lengths, answers malformed input with texts other than Redis's (which
//     clients and Redis's own test suite check), and allocates for every
//     request, so the reader here (reader.go, inline.go) is a port of
//     Redis's parser that reuses its buffers;
//   - the server loop owns each connection's writer without a lock, so a
//     push from another goroutine could land inside a reply or race it; it
//     keeps running the commands pipelined after the one that closed the
//     connection; it has no output buffer limit, so a client that does not
//     read makes the server buffer without bound; and it closes connections
//     at once on shutdown instead of letting them finish.
package resp
