package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A directive is one line of a config file: a name and its arguments.
type directive struct {
	line int
	name string // lower case, as Redis compares directive names case-insensitively
	args []string
}

// maxConfigLine bounds one line of a config file; a longer line is an error
// rather than an unbounded read.
const maxConfigLine = 1 << 20

// parseConfig reads a config file in redis.conf syntax, naming it path in
// errors ("path:line: ..."): one directive per
// line, "name arg...", with Redis's quoting rules (see splitArgs). A line
// whose first non-blank character is '#' is a comment; a '#' anywhere else is
// an ordinary character, as in Redis, so "requirepass a#b" sets "a#b".
func parseConfig(path string, r io.Reader) ([]directive, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxConfigLine)
	var ds []directive
	for line := 1; sc.Scan(); line++ {
		text := strings.Trim(sc.Text(), " \t\r\n")
		if text == "" || text[0] == '#' {
			continue
		}
		args, err := splitArgs(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(args) == 0 {
			continue
		}
		ds = append(ds, directive{line: line, name: strings.ToLower(args[0]), args: args[1:]})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d bytes", maxConfigLine)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ds, nil
}

var (
	errUnbalancedQuotes = errors.New("unbalanced quotes")
	errQuoteNoSpace     = errors.New("a closing quote must be followed by a space or the end of the line")
)

// splitArgs splits a line into arguments exactly as Redis's sdssplitargs
// does for redis.conf and redis-cli: arguments are separated by blanks;
// "double quotes" allow the escapes \n \r \t \b \a \\ \" and \xHH; 'single
// quotes' allow only \'; a quote may start in the middle of an argument
// (a"b c" is one argument, ab c) but a closing quote must end it.
func splitArgs(line string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		var arg strings.Builder
		var inDouble, inSingle bool
	arg:
		for ; ; i++ {
			if i == len(line) {
				if inDouble || inSingle {
					return nil, errUnbalancedQuotes
				}
				break
			}
			c := line[i]
			switch {
			case inDouble:
				switch {
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					arg.WriteByte(unhex(line[i+2])<<4 | unhex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					arg.WriteByte(unescape(line[i]))
				case c == '"':
					if i+1 < len(line) && !isBlank(line[i+1]) {
						return nil, errQuoteNoSpace
					}
					i++
					break arg
				default:
					arg.WriteByte(c)
				}
			case inSingle:
				switch {
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					arg.WriteByte('\'')
				case c == '\'':
					if i+1 < len(line) && !isBlank(line[i+1]) {
						return nil, errQuoteNoSpace
					}
					i++
					break arg
				default:
					arg.WriteByte(c)
				}
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				break arg
			case c == '"':
				inDouble = true
			case c == '\'':
				inSingle = true
			default:
				arg.WriteByte(c)
			}
		}
		args = append(args, arg.String())
	}
}

// isBlank reports C's isspace, which sdssplitargs skips between arguments
// and wants after a closing quote. (An unquoted argument ends only at a space,
// tab, CR or LF, so \v and \f can sit inside one.)
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// unescape maps the character after a backslash inside double quotes.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
