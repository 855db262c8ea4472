//go:build !unix

package resp

import "net"

// tryWriter writes without waiting where the platform allows it; here it
// does not, and every write goes to the background writer.
type tryWriter struct{}

func newTryWriter(net.Conn) *tryWriter { return nil }

func (*tryWriter) Write([]byte) (int, error) { panic("unreachable") }
