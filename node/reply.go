package node

import "context"

// Writer is how a command handler replies. Each protocol implements it: RESP2
// and RESP3 in wire/resp, Go values for the embedded Do. A handler writes
// exactly one reply per command; Array, Map, Set and Push announce how many
// replies (Map: pairs) follow.
//
// The writer decides how a type degrades on RESP2, as Redis does: a Map(n)
// becomes an array of 2n, a Set an array, a Double a bulk string, a Bool an
// integer, a Verbatim string a bulk string, NullArray the nil multi-bulk *-1.
type Writer interface {
	SimpleString(s string)
	// Error writes an error reply; msg starts with its prefix ("ERR ...", "WRONGTYPE ...").
	Error(msg string)
	Int(n int64)
	Bulk(b []byte)
	BulkString(s string)
	// Null is the nil reply to a missing value ($-1 in RESP2, _ in RESP3).
	Null()
	// NullArray is the nil multi-bulk (*-1 in RESP2, _ in RESP3), e.g. an aborted EXEC.
	NullArray()
	Array(n int)
	Map(n int)
	Set(n int)
	Double(f float64)
	Bool(b bool)
	// Verbatim is RESP3's verbatim string with a 3-letter format ("txt").
	Verbatim(format string, s []byte)
	// Push starts an out-of-band push message of n elements (RESP3 '>').
	Push(n int)
	// SetProtocol switches the encoding (2 or 3) for every following reply.
	SetProtocol(v int)
}

// Conn is what the node needs from a client connection of a protocol server.
type Conn interface {
	// Send writes an out-of-band message (a tracking invalidation push) at the
	// next safe point between replies. It may be called from any goroutine and
	// must never block on a slow client: a client that does not read is
	// disconnected instead.
	Send(fn func(w Writer))
	// Close disconnects the client (CLIENT KILL).
	Close() error
}

// Server is a protocol front end serving a node, such as the RESP listener in
// wire/resp. Attach it with Node.Attach; the node starts and stops it.
type Server interface {
	// Serve accepts clients until Close; it returns nil after Close.
	Serve() error
	// Close stops accepting, lets connections finish the command they are
	// running, and closes them; it returns when they are gone or ctx ends.
	Close(ctx context.Context) error
	// Addr is the address the server listens on.
	Addr() string
}
