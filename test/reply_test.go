package test

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Reply is one RESP2 or RESP3 value exactly as the server sent it: the type
// byte, the payload and, for aggregates, the elements. Nothing is converted, so
// an error's text, a nil bulk against an empty one, an integer against a
// number in a bulk string and a RESP2 nil array against a RESP3 null all
// compare unequal.
type Reply struct {
	// Kind is the RESP type byte: + - : $ * _ , # ! = ( % ~ > |.
	// Two kinds never come from a server: kindClosed (the connection ended
	// instead of replying) and kindTimeout (no reply in time).
	Kind byte
	// Str is the payload of a scalar: the text of + and -, the digits of :
	// and (, the bytes of $ and !, the text of , and #, and for = the
	// "fmt:" prefix followed by the data.
	Str string
	// Nil marks the RESP2 nil bulk ($-1) and nil array (*-1).
	Nil bool
	// Elems are the elements of * ~ > and |, and the keys and values of %
	// interleaved (k1 v1 k2 v2 ...), in the order the server sent them.
	Elems []Reply
}

const (
	kindClosed  = 'x'
	kindTimeout = 't'
)

var aggregateBrackets = map[byte][2]string{
	'*': {"[", "]"}, '~': {"set{", "}"}, '>': {"push[", "]"}, '%': {"map{", "}"}, '|': {"attr{", "}"},
}

// String renders the reply on one line, showing its type, so that a test
// failure shows exactly what differs.
func (r Reply) String() string {
	var b strings.Builder
	r.write(&b)
	return b.String()
}

func (r Reply) write(b *strings.Builder) {
	switch r.Kind {
	case '+':
		b.WriteString("+" + r.Str)
	case '-':
		b.WriteString("(error) " + r.Str)
	case ':':
		b.WriteString("(integer) " + r.Str)
	case '(':
		b.WriteString("(bignum) " + r.Str)
	case ',':
		b.WriteString("(double) " + r.Str)
	case '#':
		b.WriteString("(bool) " + r.Str)
	case '_':
		b.WriteString("(null)")
	case '$', '!', '=':
		if r.Nil {
			b.WriteString("(nil bulk)")
			return
		}
		switch r.Kind {
		case '!':
			b.WriteString("(blob error) ")
		case '=':
			b.WriteString("(verbatim) ")
		}
		b.WriteString(strconv.Quote(r.Str))
	case '*', '~', '>', '%', '|':
		if r.Nil {
			b.WriteString("(nil array)")
			return
		}
		brackets := aggregateBrackets[r.Kind]
		b.WriteString(brackets[0])
		for i, e := range r.Elems {
			if i > 0 {
				if (r.Kind == '%' || r.Kind == '|') && i%2 == 1 {
					b.WriteString(": ")
				} else {
					b.WriteString(", ")
				}
			}
			e.write(b)
		}
		b.WriteString(brackets[1])
	case kindClosed:
		b.WriteString("(connection closed)")
	case kindTimeout:
		b.WriteString("(no reply)")
	default:
		fmt.Fprintf(b, "(kind %q) %q", r.Kind, r.Str)
	}
}

// Equal reports whether two replies are the same value of the same type.
func (r Reply) Equal(o Reply) bool {
	if r.Kind != o.Kind || r.Str != o.Str || r.Nil != o.Nil || len(r.Elems) != len(o.Elems) {
		return false
	}
	for i := range r.Elems {
		if !r.Elems[i].Equal(o.Elems[i]) {
			return false
		}
	}
	return true
}

// IsError reports whether the reply is an error (simple or blob).
func (r Reply) IsError() bool { return r.Kind == '-' || r.Kind == '!' }

// Int returns an integer reply's value.
func (r Reply) Int() (int64, bool) {
	if r.Kind != ':' {
		return 0, false
	}
	n, err := strconv.ParseInt(r.Str, 10, 64)
	return n, err == nil
}

// Pairs returns the key/value pairs of a map, or of a RESP2 array that
// encodes one (HELLO 2, CONFIG GET).
func (r Reply) Pairs() ([][2]Reply, bool) {
	if (r.Kind != '%' && r.Kind != '*') || len(r.Elems)%2 != 0 {
		return nil, false
	}
	out := make([][2]Reply, 0, len(r.Elems)/2)
	for i := 0; i < len(r.Elems); i += 2 {
		out = append(out, [2]Reply{r.Elems[i], r.Elems[i+1]})
	}
	return out, true
}

// maxTestBulk bounds what the test client accepts in one bulk string, so a
// server sending a garbage length fails the test instead of exhausting memory.
const maxTestBulk = 64 << 20

// readReply reads one complete value, attributes included as their own '|'
// values (the caller decides what to do with them).
func readReply(r *bufio.Reader) (Reply, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return Reply{}, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return Reply{}, malformed("RESP line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+', '-', ':', '(', ',', '#':
		return Reply{Kind: kind, Str: body}, nil
	case '_':
		if body != "" {
			return Reply{}, malformed("RESP3 null %q", line)
		}
		return Reply{Kind: kind}, nil
	case '$', '!', '=':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxTestBulk {
			return Reply{}, malformed("bulk length %q", line)
		}
		if n == -1 {
			return Reply{Kind: kind, Nil: true}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return Reply{}, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return Reply{}, malformed("bulk of %d bytes not followed by CRLF", n)
		}
		return Reply{Kind: kind, Str: string(buf[:n])}, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 1<<24 {
			return Reply{}, malformed("aggregate length %q", line)
		}
		if n == -1 {
			return Reply{Kind: kind, Nil: true}, nil
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		out := Reply{Kind: kind, Elems: make([]Reply, 0, n)}
		for range n {
			e, err := readReply(r)
			if err != nil {
				return Reply{}, err
			}
			out.Elems = append(out.Elems, e)
		}
		return out, nil
	}
	return Reply{}, malformed("unknown RESP type in %q", line)
}

// malformedError is a reply stream that is not valid RESP: a server bug, as
// opposed to a connection that ended.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return "malformed " + e.msg }

func malformed(format string, args ...any) error {
	return &malformedError{fmt.Sprintf(format, args...)}
}
