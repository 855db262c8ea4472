package load

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// errMalformed is a reply that is not RESP.
var errMalformed = errors.New("malformed reply")

// AppendCommand appends args as a RESP array of bulk strings, the form in
// which clients send requests.
func AppendCommand(b []byte, args ...[]byte) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = appendBulk(b, a)
	}
	return b
}

func appendBulk(b, a []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(a)), 10)
	b = append(b, '\r', '\n')
	b = append(b, a...)
	return append(b, '\r', '\n')
}

// scan measures the reply at the start of b without decoding it: n is its
// length, or 0 when b holds only part of it; isErr reports an error reply
// ('-' or RESP3's '!'). It handles every RESP2 and RESP3 type, nested.
func scan(b []byte) (n int, isErr bool, err error) {
	if len(b) == 0 {
		return 0, false, nil
	}
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		return 0, false, nil
	}
	if eol < 1 || b[eol-1] != '\r' {
		return 0, false, errMalformed
	}
	head := eol + 1
	line := b[1 : eol-1]
	switch b[0] {
	case '+', ':', '_', ',', '#', '(':
		return head, false, nil
	case '-':
		return head, true, nil
	case '$', '=', '!':
		size, err := strconv.Atoi(string(line))
		if err != nil {
			return 0, false, errMalformed
		}
		if size < 0 {
			return head, false, nil
		}
		if len(b) < head+size+2 {
			return 0, false, nil
		}
		return head + size + 2, b[0] == '!', nil
	case '*', '~', '>', '%', '|':
		count, err := strconv.Atoi(string(line))
		if err != nil {
			return 0, false, errMalformed
		}
		if b[0] == '%' || b[0] == '|' {
			count *= 2
		}
		n = head
		for range count {
			m, e, err := scan(b[n:])
			if err != nil || m == 0 {
				return 0, false, err
			}
			isErr = isErr || e
			n += m
		}
		return n, isErr, nil
	}
	return 0, false, errMalformed
}

// Client is a minimal request-reply RESP connection for the harness's
// set-up steps (SCRIPT LOAD, INFO, a probe of each workload's command); the
// load itself goes through Run.
type Client struct {
	nc net.Conn
	rd *bufio.Reader
}

// Dial connects to a RESP server.
func Dial(addr string) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Client{nc: nc, rd: bufio.NewReader(nc)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.nc.Close() }

// Do sends one command and returns its reply decoded: a string for simple
// and bulk strings, an int64, nil, a []any, or an error for an error reply
// (the second result is for failures of the connection or the protocol).
func (c *Client) Do(args ...string) (any, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	if err := c.nc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := c.nc.Write(AppendCommand(nil, bs...)); err != nil {
		return nil, err
	}
	return c.read()
}

// ServerError is an error reply.
type ServerError string

func (e ServerError) Error() string { return string(e) }

func (c *Client) read() (any, error) {
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, errMalformed
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return ServerError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		size, err := strconv.Atoi(body)
		if err != nil {
			return nil, errMalformed
		}
		if size < 0 {
			return nil, nil
		}
		buf := make([]byte, size+2)
		if _, err := ioReadFull(c.rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:size]), nil
	case '*':
		count, err := strconv.Atoi(body)
		if err != nil {
			return nil, errMalformed
		}
		if count < 0 {
			return nil, nil
		}
		out := make([]any, count)
		for i := range out {
			if out[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %q", errMalformed, line)
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
