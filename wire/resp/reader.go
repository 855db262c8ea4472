package resp

import (
	"bytes"
	"io"
	"math"
)

// Sizes of the request reader, named after their Redis counterparts.
const (
	// readSize is how much the reader asks the connection for at least
	// (PROTO_IOBUF_LEN).
	readSize = 16 << 10
	// maxLine is the longest line the reader waits for: an inline request,
	// or the text of a *count or $length header (PROTO_INLINE_MAX_SIZE).
	maxLine = 64 << 10
	// keepBuf is the largest input buffer kept while a connection is idle;
	// a bigger one, grown for a large request, is let go.
	keepBuf = 256 << 10
	// preallocArgs caps how many argument slots a *count header reserves
	// before the arguments arrive, so that a claimed count costs nothing.
	preallocArgs = 1024
)

// protocolError is malformed input. The connection replies with its text
// and closes, as Redis does.
type protocolError struct {
	reason string // the text after "Protocol error: "
}

// Error is the reply text: "ERR Protocol error: " and the reason.
func (e *protocolError) Error() string { return "ERR Protocol error: " + e.reason }

// The protocol errors, with Redis 7.0's texts (networking.c). Only
// "expected '$', got 'x'" varies, and is built when it happens.
var (
	errInlineTooBig    = &protocolError{"too big inline request"}
	errUnbalanced      = &protocolError{"unbalanced quotes in request"}
	errMultibulkLen    = &protocolError{"invalid multibulk length"}
	errMultibulkTooBig = &protocolError{"too big mbulk count string"}
	errBulkLen         = &protocolError{"invalid bulk length"}
	errBulkTooBig      = &protocolError{"too big bulk count string"}
	errUnauthMultibulk = &protocolError{"unauthenticated multibulk length"}
	errUnauthBulk      = &protocolError{"unauthenticated bulk length"}
)

// errExpectedDollar is the error for a multibulk argument that does not
// start with '$'. Like Redis it quotes the byte it found, with CR and LF
// shown as spaces (they would break the reply line).
func errExpectedDollar(got byte) *protocolError {
	if got == '\r' || got == '\n' {
		got = ' '
	}
	return &protocolError{"expected '$', got '" + string([]byte{got}) + "'"}
}

// span is an argument of the request being read, as offsets from the
// request's first byte, so that it survives the buffer moving or growing.
type span struct{ from, to int }

// reader parses client requests out of a buffer it fills from the
// connection: multibulk requests (*count, then $length and data for each
// argument) and inline requests (a line of words, with quoting, as telnet
// and redis-cli send). It follows processMultibulkBuffer and
// processInlineBuffer of Redis 7.0 step by step, so that it accepts,
// rejects and waits on the same bytes:
//
//   - a line is looked for the way Redis's strchr does: a NUL byte before
//     the end of the line hides it, so the reader waits for more input;
//   - a line still unfinished after maxLine bytes is an error ("too big ...
//     request/string"). Redis checks this after each 16 KiB read, so it may
//     take a little more; the reader checks the first maxLine+1 bytes, so the
//     outcome does not depend on how the input was split;
//   - the byte after a header's CR and the two bytes after a bulk's data are
//     skipped unchecked, as in Redis;
//   - a count of zero or less is an empty request, and so is an empty or
//     blank inline line: they are skipped.
//
// Arguments returned by next point into the buffer and are valid until the
// next call to next or fill. In steady state the reader allocates nothing:
// the buffer, the spans and the argument slice are reused. The buffer grows
// only as data arrives (never for a length a client merely announces), so
// what a connection costs is bounded by what it has sent.
type reader struct {
	buf      []byte
	pos, end int   // unread input is buf[pos:end]
	total    int64 // bytes read, ever

	// The request being parsed; Redis keeps the same state in its client.
	start int    // offset of its first byte
	kind  byte   // 0 before its first byte is seen, then '*' or 'i' (inline)
	multi int    // bulks still to read; 0 = the *count is not read yet
	bulk  int    // length of the bulk being read; -1 = its $length is not read yet
	spans []span // the bulks read so far
	args  [][]byte

	// The line being looked for: how many bytes from pos are known not to
	// end it, and whether a NUL byte was met, which hides its end for good.
	scanned int
	nul     bool

	// Limits, set by the connection before each batch.
	maxBulk int64 // proto-max-bulk-len
	maxArgs int   // the largest *count accepted
	// unauth is set, before each request, while the client must still
	// authenticate: like Redis, the reader then refuses multibulk requests
	// of more than unauthArgs arguments or with bulks longer than
	// unauthBulk, so that a client without the password cannot make the
	// server buffer much.
	unauth bool
}

// Redis's limits on the requests of clients that have not authenticated.
const (
	unauthArgs = 10
	unauthBulk = 16384
)

func newReader() *reader {
	return &reader{buf: make([]byte, readSize), bulk: -1, maxBulk: 512 << 20, maxArgs: 1 << 20}
}

// next returns the arguments of the next complete request in the buffer.
// It returns nil and a nil error when the buffer holds no complete request
// (empty requests are consumed and skipped), and a *protocolError for
// malformed input, after which the reader must not be used again.
func (r *reader) next() ([][]byte, error) {
	for r.pos < r.end {
		if r.kind == 0 {
			r.start = r.pos
			r.kind = 'i'
			if r.buf[r.pos] == '*' {
				r.kind = '*'
			}
		}
		var args [][]byte
		var ok bool
		var err error
		if r.kind == 'i' {
			args, ok, err = r.inline()
		} else {
			args, ok, err = r.multibulk()
		}
		if err != nil || !ok {
			return nil, err
		}
		r.kind = 0
		if len(args) > 0 {
			return args, nil
		}
	}
	return nil, nil
}

// partial is how many bytes of an incomplete request the buffer holds,
// once next has returned nil.
func (r *reader) partial() int {
	if r.kind == 0 {
		return r.end - r.pos
	}
	return r.end - r.start
}

// line finds the end of the line starting at pos: the index, relative to
// pos, of the first c in the unread input, searching as C's strchr does on
// Redis's NUL-terminated buffer (a NUL ends the search). It returns -1 when
// there is none within maxLine+1 bytes, and tooBig when the unread input is
// already longer than maxLine without one.
//
// It remembers how far it has searched, so a line arriving a byte at a time
// costs linear, not quadratic, time.
func (r *reader) line(c byte) (i int, tooBig bool) {
	limit := min(r.end, r.pos+maxLine+1)
	if !r.nul {
		from := r.pos + r.scanned
		window := r.buf[from:limit]
		i = bytes.IndexByte(window, c)
		if i < 0 {
			i = len(window)
		}
		if bytes.IndexByte(window[:i], 0) >= 0 {
			r.nul = true // the line can never end now
		} else if i < len(window) {
			r.scanned = 0
			return from - r.pos + i, false
		}
	}
	r.scanned = limit - r.pos
	return -1, r.end-r.pos > maxLine
}

// multibulk reads (more of) a multibulk request. ok is false while it is
// incomplete.
func (r *reader) multibulk() (args [][]byte, ok bool, err error) {
	if r.multi == 0 {
		nl, tooBig := r.line('\r')
		if nl < 0 {
			if tooBig {
				return nil, false, errMultibulkTooBig
			}
			return nil, false, nil
		}
		if nl > r.end-r.pos-2 { // the byte after CR has not arrived
			return nil, false, nil
		}
		n, valid := parseInt(r.buf[r.pos+1 : r.pos+nl])
		if !valid || n > math.MaxInt32 || n > int64(r.maxArgs) {
			return nil, false, errMultibulkLen
		}
		if n > unauthArgs && r.unauth {
			return nil, false, errUnauthMultibulk
		}
		r.pos += nl + 2
		if n <= 0 {
			return nil, true, nil
		}
		r.multi = int(n)
		r.bulk = -1
		r.spans = r.spans[:0]
		if cap(r.spans) < min(r.multi, preallocArgs) {
			r.spans = make([]span, 0, min(r.multi, preallocArgs))
		}
	}
	for r.multi > 0 {
		if r.bulk < 0 {
			nl, tooBig := r.line('\r')
			if nl < 0 {
				if tooBig {
					return nil, false, errBulkTooBig
				}
				return nil, false, nil
			}
			if nl > r.end-r.pos-2 {
				return nil, false, nil
			}
			if r.buf[r.pos] != '$' {
				return nil, false, errExpectedDollar(r.buf[r.pos])
			}
			n, valid := parseInt(r.buf[r.pos+1 : r.pos+nl])
			if !valid || n < 0 || n > r.maxBulk || n > math.MaxInt-2 {
				return nil, false, errBulkLen
			}
			if n > unauthBulk && r.unauth {
				return nil, false, errUnauthBulk
			}
			r.pos += nl + 2
			r.bulk = int(n)
		}
		if r.end-r.pos < r.bulk+2 {
			return nil, false, nil
		}
		r.spans = append(r.spans, span{r.pos - r.start, r.pos + r.bulk - r.start})
		r.pos += r.bulk + 2
		r.bulk = -1
		r.multi--
	}
	r.args = r.args[:0]
	for _, s := range r.spans {
		from, to := r.start+s.from, r.start+s.to
		r.args = append(r.args, r.buf[from:to:to])
	}
	return r.args, true, nil
}

// inline reads an inline request: one line, split into arguments.
func (r *reader) inline() (args [][]byte, ok bool, err error) {
	nl, tooBig := r.line('\n')
	if nl < 0 {
		if tooBig {
			return nil, false, errInlineTooBig
		}
		return nil, false, nil
	}
	end := r.pos + nl
	if nl > 0 && r.buf[end-1] == '\r' {
		end--
	}
	r.args, ok = splitArgs(r.args[:0], r.buf[r.pos:end])
	if !ok {
		return nil, false, errUnbalanced
	}
	r.pos += nl + 1
	if len(r.args) > r.maxArgs {
		return nil, false, errMultibulkLen
	}
	return r.args, true, nil
}

// fill reads more input from rd. It first makes room: it drops consumed
// input by moving the request being read to the front, and grows the buffer
// when that request fills it. Growth is geometric and never past what the
// request being read still needs, so a large bulk is not copied over and
// over, and a bulk announced but not sent costs nothing.
func (r *reader) fill(rd io.Reader) error {
	keep := r.pos // first byte still needed
	if r.kind != 0 {
		keep = r.start
	}
	switch {
	case keep == r.end: // nothing to keep, so no request in progress
		if len(r.buf) > keepBuf {
			r.buf = make([]byte, readSize)
		}
		r.pos, r.start, r.end = 0, 0, 0
	case len(r.buf)-r.end < readSize/2:
		used := r.end - keep
		if want := used + readSize; want > len(r.buf) {
			size := max(2*len(r.buf), want)
			if r.kind == '*' && r.bulk >= 0 {
				// Room for the rest of this bulk and its CRLF, plus a read.
				need := r.pos - keep + r.bulk + 2 + readSize
				size = max(min(size, need), want)
			}
			nb := make([]byte, size)
			copy(nb, r.buf[keep:r.end])
			r.buf = nb
		} else {
			copy(r.buf, r.buf[keep:r.end])
		}
		r.pos -= keep
		r.start -= keep
		r.end = used
	}
	n, err := rd.Read(r.buf[r.end:])
	r.end += n
	r.total += int64(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// parseInt parses a decimal the way Redis's string2ll does: an optional
// minus, no plus, no spaces, no leading zeros, fewer than 21 bytes, and no
// overflow of int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > math.MaxUint64/10 {
			return 0, false
		}
		v *= 10
		if v > math.MaxUint64-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}
