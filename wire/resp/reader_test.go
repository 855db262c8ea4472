package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// chunked reads its input n bytes at a time, as a slow network would.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// parse runs the reader over input delivered chunk bytes at a time and
// returns the requests it read, each joined with "|", and the error it
// stopped at: a *protocolError, or nil when the input ran out.
func parse(t testing.TB, input []byte, chunk int, setup func(*reader)) ([]string, error) {
	r := newReader()
	if setup != nil {
		setup(r)
	}
	src := &chunked{data: input, n: chunk}
	var got []string
	for {
		args, err := r.next()
		if err != nil {
			return got, err
		}
		if args != nil {
			parts := make([]string, len(args))
			for i, a := range args {
				parts[i] = string(a)
			}
			got = append(got, strings.Join(parts, "|"))
			continue
		}
		if err := r.fill(src); err != nil {
			if err != io.EOF {
				t.Fatalf("fill: %v", err)
			}
			return got, nil
		}
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"multibulk", "*1\r\n$4\r\nPING\r\n", []string{"PING"}},
		{"multibulk args", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", []string{"SET|k|value"}},
		{"multibulk empty arg", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", []string{"ECHO|"}},
		{"multibulk binary", "*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\x00\"b\r\n", []string{"ECHO|a\r\n\x00\"b"}},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n", []string{"PING", "GET|a", "PING"}},
		{"zero count is skipped", "*0\r\n*1\r\n$4\r\nPING\r\n", []string{"PING"}},
		{"negative count is skipped", "*-10\r\n*1\r\n$4\r\nPING\r\n", []string{"PING"}},
		{"empty query is skipped", "\r\n*1\r\n$4\r\nPING\r\n", []string{"PING"}},
		{"blank line is skipped", "  \t \r\nPING\r\n", []string{"PING"}},
		{"lone LF is skipped", "\nPING\n", []string{"PING"}},
		{"incomplete", "*2\r\n$3\r\nGET\r\n$1\r\n", nil},
		{"incomplete header", "*2", nil},
		// Like Redis: the byte after a header's CR and the two after a bulk
		// are skipped unchecked.
		{"header CR then anything", "*1\rx$4\ryPING\r\n", []string{"PING"}},
		{"bulk trailer unchecked", "*1\r\n$4\r\nPINGxy*1\r\n$4\r\nPING\r\n", []string{"PING", "PING"}},
		{"NUL hides the line", "*1\x00\r\n$4\r\nPING\r\n", nil},
		{"inline", "PING\r\n", []string{"PING"}},
		{"inline LF", "SET a b\n", []string{"SET|a|b"}},
		{"inline blanks", " \t SET  a\tb \r\n", []string{"SET|a|b"}},
		{"inline CR inside", "SET a b\rc\r\n", []string{"SET|a|b|c"}},
		{"inline double quotes", `SET "a key" "x\"y\\z"` + "\r\n", []string{`SET|a key|x"y\z`}},
		{"inline escapes", `ECHO "\n\r\t\b\a\q"` + "\r\n", []string{"ECHO|\n\r\t\b\aq"}},
		{"inline hex", `ECHO "\x00\xff\x4A\xZZ"` + "\r\n", []string{"ECHO|\x00\xffJxZZ"}},
		{"inline single quotes", `ECHO 'it\'s "x" \n'` + "\r\n", []string{`ECHO|it's "x" \n`}},
		{"inline empty quoted", `SET k ""` + "\r\n", []string{"SET|k|"}},
		{"inline quote inside word", `ECHO a"b c"d` + "\r\n", nil}, // closing quote followed by d
		{"inline quote starts mid word", `ECHO a"b c" d` + "\r\n", []string{"ECHO|ab c|d"}},
		{"inline vertical tab", "ECHO a\vb\r\n", []string{"ECHO|a\vb"}},
		{"inline then multibulk", "PING\r\n*1\r\n$4\r\nPING\r\n", []string{"PING", "PING"}},
		{"inline incomplete", "PING", nil},
		{"inline NUL hides the line", "PI\x00NG\r\n", nil},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, readSize} {
			got, err := parse(t, []byte(tt.input), chunk, nil)
			if tt.name == "inline quote inside word" {
				if !errors.Is(err, errUnbalanced) {
					t.Errorf("%s: err %v, want %v", tt.name, err, errUnbalanced)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s (chunks of %d): %v", tt.name, chunk, err)
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s (chunks of %d): got %q, want %q", tt.name, chunk, got, tt.want)
			}
		}
	}
}

// TestReaderErrors covers every protocol error of Redis 7.0.15, with the
// inputs of its tests/unit/protocol.tcl where there is one.
func TestReaderErrors(t *testing.T) {
	long := strings.Repeat("A", maxLine+1)
	payload := strings.Repeat("payload", 2*maxLine/7)
	tests := []struct {
		name   string
		input  string
		before []string // requests read before the error
		want   string
	}{
		{"out of range multibulk length", "*3000000000\r\n", nil, "invalid multibulk length"},
		{"int32 overflow", "*2147483648\r\n", nil, "invalid multibulk length"},
		{"non-number multibulk length", "*abc\r\n", nil, "invalid multibulk length"},
		{"empty multibulk length", "*\r\n", nil, "invalid multibulk length"},
		{"plus sign", "*+1\r\n", nil, "invalid multibulk length"},
		{"leading zero", "*01\r\n", nil, "invalid multibulk length"},
		{"minus zero", "*-0\r\n", nil, "invalid multibulk length"},
		{"space", "* 1\r\n", nil, "invalid multibulk length"},
		{"wrong multibulk payload header", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", nil, "expected '$', got 'f'"},
		{"multibulk not followed by bulk", "*1\r\nfoo\r\n", nil, "expected '$', got 'f'"},
		{"expected $ got CR", "*1\r\n\r\n", nil, "expected '$', got ' '"},
		{"expected $ got star", "*1\r\n*1\r\n", nil, "expected '$', got '*'"},
		{"negative bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", nil, "invalid bulk length"},
		{"nil bulk length", "*1\r\n$-1\r\n", nil, "invalid bulk length"},
		{"out of range bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", nil, "invalid bulk length"},
		{"non-number bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", nil, "invalid bulk length"},
		{"int64 overflow bulk length", "*1\r\n$9223372036854775808\r\n", nil, "invalid bulk length"},
		{"unbalanced quotes", "set \"\"\"test-key\"\"\" test-value\r\nping\r\n", nil, "unbalanced quotes in request"},
		{"unterminated double quote", "ECHO \"abc\r\n", nil, "unbalanced quotes in request"},
		{"unterminated single quote", "ECHO 'abc\r\n", nil, "unbalanced quotes in request"},
		{"trailing backslash in quotes", "ECHO \"abc\\\r\n", nil, "unbalanced quotes in request"},
		{"too big inline request", long, nil, "too big inline request"},
		{"too big mbulk count string", "*" + long, nil, "too big mbulk count string"},
		{"too big bulk count string", "*1\r\n$" + long, nil, "too big bulk count string"},
		{"too big bulk count after args", "*2\r\n$1\r\na\r\n" + long, nil, "too big bulk count string"},
		{"protocol desync 1", "\x00" + payload, nil, "too big inline request"},
		{"protocol desync 2", "*\x00" + payload, nil, "too big mbulk count string"},
		{"protocol desync 3", "$\x00" + payload, nil, "too big inline request"},
		{"requests before the error run", "PING\r\n*2\r\n$4\r\nECHO\r\n*x\r\n", []string{"PING"}, "expected '$', got '*'"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 1000, readSize} {
			got, err := parse(t, []byte(tt.input), chunk, nil)
			var pe *protocolError
			if !errors.As(err, &pe) {
				t.Errorf("%s (chunks of %d): err %v, want a protocol error", tt.name, chunk, err)
				continue
			}
			if pe.reason != tt.want {
				t.Errorf("%s (chunks of %d): %q, want %q", tt.name, chunk, pe.reason, tt.want)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.before) {
				t.Errorf("%s (chunks of %d): read %q before the error, want %q", tt.name, chunk, got, tt.before)
			}
		}
	}
	if got := errMultibulkLen.Error(); got != "ERR Protocol error: invalid multibulk length" {
		t.Errorf("Error() = %q", got)
	}
}

// TestReaderLineLimit checks the boundary of the 64 KiB line limit: a line
// of exactly maxLine bytes is read, one more is an error.
func TestReaderLineLimit(t *testing.T) {
	ok := "ECHO " + strings.Repeat("a", maxLine-5) + "\n"
	got, err := parse(t, []byte(ok), readSize, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("line of %d bytes: %v, %d requests", maxLine, err, len(got))
	}
	tooLong := "ECHO " + strings.Repeat("a", maxLine-4) + "\n"
	if _, err := parse(t, []byte(tooLong), readSize, nil); !errors.Is(err, errInlineTooBig) {
		t.Fatalf("line of %d bytes: %v, want %v", maxLine+1, err, errInlineTooBig)
	}
	// A bulk's data is not a line: it may be as long as the limit allows.
	big := strings.Repeat("b", 3*maxLine)
	got, err = parse(t, []byte("*2\r\n$4\r\nECHO\r\n$"+strconv.Itoa(len(big))+"\r\n"+big+"\r\n"), 5000, nil)
	if err != nil || len(got) != 1 || got[0] != "ECHO|"+big {
		t.Fatalf("big bulk: %v, %d requests", err, len(got))
	}
}

func TestReaderLimits(t *testing.T) {
	limit := func(bulk int64, args int) func(*reader) {
		return func(r *reader) { r.maxBulk, r.maxArgs = bulk, args }
	}
	unauth := func(r *reader) { r.unauth = true }
	tests := []struct {
		name  string
		input string
		setup func(*reader)
		want  error // nil: read one request
	}{
		{"bulk at the limit", "*1\r\n$10\r\n0123456789\r\n", limit(10, 10), nil},
		{"bulk over the limit", "*1\r\n$11\r\n", limit(10, 10), errBulkLen},
		{"default bulk limit", "*1\r\n$536870912\r\n", nil, nil},
		{"over the default bulk limit", "*1\r\n$536870913\r\n", nil, errBulkLen},
		{"args at the limit", "*2\r\n$1\r\na\r\n$1\r\nb\r\n", limit(10, 2), nil},
		{"args over the limit", "*3\r\n", limit(10, 2), errMultibulkLen},
		{"inline args over the limit", "a b c\r\n", limit(10, 2), errMultibulkLen},
		{"default args limit", "*1048577\r\n", nil, errMultibulkLen},
		{"unauthenticated args at the limit", "*10\r\n", unauth, nil},
		{"unauthenticated args over the limit", "*11\r\n", unauth, errUnauthMultibulk},
		{"unauthenticated invalid count", "*3000000000\r\n", unauth, errMultibulkLen},
		{"unauthenticated bulk at the limit", "*1\r\n$16384\r\n" + strings.Repeat("x", 16384) + "\r\n", unauth, nil},
		{"unauthenticated bulk over the limit", "*1\r\n$16385\r\n", unauth, errUnauthBulk},
		{"unauthenticated invalid bulk", "*1\r\n$-1\r\n", unauth, errBulkLen},
		{"unauthenticated inline", strings.Repeat("a ", 20) + "\r\n", unauth, nil},
	}
	for _, tt := range tests {
		_, err := parse(t, []byte(tt.input), readSize, tt.setup)
		if err != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestReaderAnnouncedBulk checks that a bulk length costs nothing until its
// data arrives: a client announcing 512 MiB and sending 3 bytes does not
// make the reader allocate for it.
func TestReaderAnnouncedBulk(t *testing.T) {
	r := newReader()
	src := &chunked{data: []byte("*2\r\n$3\r\nSET\r\n$536870912\r\nabc"), n: readSize}
	for {
		args, err := r.next()
		if err != nil || args != nil {
			t.Fatalf("next: %q, %v", args, err)
		}
		if err := r.fill(src); err == io.EOF {
			break
		}
	}
	if len(r.buf) > 2*readSize {
		t.Fatalf("buffer grew to %d bytes for 3 bytes of data", len(r.buf))
	}
	// A huge count reserves a bounded number of argument slots.
	r = newReader()
	if _, err := parse(t, []byte("*1000000\r\n$1\r\na\r\n"), readSize, func(rr *reader) { r = rr }); err != nil {
		t.Fatal(err)
	}
	if cap(r.spans) > preallocArgs {
		t.Fatalf("a count of 1000000 reserved %d slots", cap(r.spans))
	}
}

// TestReaderBufferReuse checks the buffer moves partial requests to the
// front instead of growing, and shrinks back after a big request.
func TestReaderBufferReuse(t *testing.T) {
	var in bytes.Buffer
	for range 10000 {
		in.WriteString("*2\r\n$3\r\nGET\r\n$10\r\nkey:000001\r\n")
	}
	r := newReader()
	src := &chunked{data: in.Bytes(), n: 4000}
	n := 0
	for {
		args, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if args != nil {
			n++
			continue
		}
		if err := r.fill(src); err == io.EOF {
			break
		}
	}
	if n != 10000 || len(r.buf) != readSize {
		t.Fatalf("read %d requests, buffer of %d bytes", n, len(r.buf))
	}
	big := strings.Repeat("x", 1<<20)
	src = &chunked{data: []byte("*2\r\n$4\r\nECHO\r\n$1048576\r\n" + big + "\r\nPING\r\n"), n: 64 << 10}
	for n = 0; n < 2; {
		args, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if args != nil {
			n++
			continue
		}
		if err := r.fill(src); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.buf) < 1<<20 {
		t.Fatalf("buffer of %d bytes held a 1 MiB bulk", len(r.buf))
	}
	src = &chunked{data: []byte("PING\r\n"), n: 64}
	if err := r.fill(src); err != nil {
		t.Fatal(err)
	}
	if len(r.buf) != readSize {
		t.Fatalf("buffer of %d bytes kept after the big request", len(r.buf))
	}
}

func TestReaderAllocs(t *testing.T) {
	var in bytes.Buffer
	for range 100 {
		in.WriteString("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
		in.WriteString(`SET "a key" 'a value'` + "\r\n")
	}
	r := newReader()
	src := bytes.NewReader(in.Bytes())
	allocs := testing.AllocsPerRun(50, func() {
		src.Reset(in.Bytes())
		for {
			args, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if args != nil {
				continue
			}
			if r.fill(src) != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per 200 requests, want 0", allocs)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		line string
		want []string // nil: unbalanced
	}{
		{"", []string{}},
		{"   ", []string{}},
		{"a", []string{"a"}},
		{"a b", []string{"a", "b"}},
		{`"a b"`, []string{"a b"}},
		{`"a"b`, nil},
		{`'a'b`, nil},
		{`"a`, nil},
		{`'a`, nil},
		{`"a\"`, nil},
		{`"\x41\x4a\x4A"`, []string{"AJJ"}},
		{`"\x4"`, []string{"x4"}},
		{`'\x41'`, []string{`\x41`}},
		{`'a\'b'`, []string{"a'b"}},
		{`'a\b'`, []string{`a\b`}},
		{"\"a\"\f", []string{"a"}},
		{"a\x00b c", []string{"a"}},
		{`""`, []string{""}},
		{`'' ''`, []string{"", ""}},
	}
	for _, tt := range tests {
		args, ok := splitArgs(nil, []byte(tt.line))
		if tt.want == nil {
			if ok {
				t.Errorf("splitArgs(%q) = %q, want unbalanced", tt.line, args)
			}
			continue
		}
		got := make([]string, len(args))
		for i, a := range args {
			got[i] = string(a)
		}
		if !ok || fmt.Sprint(got) != fmt.Sprint(tt.want) || len(got) != len(tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v, want %q", tt.line, got, ok, tt.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := map[string]int64{
		"0": 0, "1": 1, "-1": -1, "10": 10, "9223372036854775807": 1<<63 - 1,
		"-9223372036854775808": -1 << 63,
	}
	for s, want := range tests {
		if got, ok := parseInt([]byte(s)); !ok || got != want {
			t.Errorf("parseInt(%q) = %d, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "-", "+1", "01", "-0", " 1", "1 ", "1a", "9223372036854775808",
		"-9223372036854775809", "18446744073709551616", "00000000000000000000001"} {
		if got, ok := parseInt([]byte(s)); ok {
			t.Errorf("parseInt(%q) = %d, want invalid", s, got)
		}
	}
}

// quote writes an argument as an inline argument the way redis-cli's
// sdscatrepr would, so that splitArgs must decode it back.
func quote(b *bytes.Buffer, a []byte) {
	b.WriteByte('"')
	for _, c := range a {
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// FuzzReader feeds random bytes to the reader. It must never panic, must
// read the same requests and stop at the same error however the input is
// split, and must not grow its buffers past what the input justifies.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n", "PING\r\n", `SET "a\x00" 'b'` + "\n", "*3000000000\r\n",
		"*1\r\nfoo\r\n", "*1\r\n$-1\r\n", "\x00payload", "*\x00payload", "$\x00", "*0\r\n*-1\r\n\r\n",
		"*2\r\n$3\r\nGET\r\n$100\r\nabc", `"unbalanced`, "*1\rx$1\ryaxx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Small limits, and the pre-authentication ones when the first
		// byte is odd.
		small := func(r *reader) {
			r.maxBulk, r.maxArgs = 1<<10, 64
			r.unauth = len(data) > 0 && data[0]&1 == 1
		}
		var first string
		for i, chunk := range []int{1, 13, readSize} {
			r := newReader()
			small(r)
			src := &chunked{data: data, n: chunk}
			var out strings.Builder
			for {
				args, err := r.next()
				if err != nil {
					fmt.Fprintf(&out, "error %v", err)
					break
				}
				if args != nil {
					if len(args) > r.maxArgs {
						t.Fatalf("%d arguments, limit %d", len(args), r.maxArgs)
					}
					for _, a := range args {
						if int64(len(a)) > r.maxBulk && len(a) > maxLine {
							t.Fatalf("argument of %d bytes", len(a))
						}
					}
					fmt.Fprintf(&out, "%q\n", args)
					continue
				}
				if r.fill(src) != nil {
					break
				}
			}
			if bound := 2*len(data) + 4*readSize; len(r.buf) > bound {
				t.Fatalf("buffer of %d bytes for %d bytes of input", len(r.buf), len(data))
			}
			if bound := max(preallocArgs, len(data)/4+1); cap(r.spans) > bound || cap(r.args) > 2*bound {
				t.Fatalf("%d spans, %d args for %d bytes of input", cap(r.spans), cap(r.args), len(data))
			}
			if i == 0 {
				first = out.String()
			} else if out.String() != first {
				t.Fatalf("chunks of %d read\n%s\nbut chunks of 1 read\n%s", chunk, out.String(), first)
			}
		}
	})
}

// FuzzRoundTrip encodes arguments as a multibulk request and as a quoted
// inline request, and checks the reader reads them back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("SET"), []byte("key"), []byte("value"))
	f.Add([]byte("ECHO"), []byte("\r\n\x00\"'\\"), []byte{})
	f.Add([]byte("a b"), []byte("\xff\x7f"), []byte("$1\r\n"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		args := [][]byte{a, b, c}
		var mb, in bytes.Buffer
		fmt.Fprintf(&mb, "*%d\r\n", len(args))
		for i, arg := range args {
			fmt.Fprintf(&mb, "$%d\r\n%s\r\n", len(arg), arg)
			if i > 0 {
				in.WriteByte(' ')
			}
			quote(&in, arg)
		}
		in.WriteString("\r\n")
		want := fmt.Sprintf("%q", args)
		for _, input := range []*bytes.Buffer{&mb, &in} {
			if input == &in && in.Len() > maxLine {
				continue
			}
			for _, chunk := range []int{1, 7, readSize} {
				r := newReader()
				src := &chunked{data: input.Bytes(), n: chunk}
				var got [][]byte
				for got == nil {
					var err error
					if got, err = r.next(); err != nil {
						t.Fatalf("%q: %v", input, err)
					}
					if got == nil && r.fill(src) != nil {
						t.Fatalf("%q: no request read", input)
					}
				}
				if s := fmt.Sprintf("%q", got); s != want {
					t.Fatalf("%q read as %s, want %s", input, s, want)
				}
			}
		}
	})
}
