package resp

import "bytes"

// splitArgs appends the arguments of an inline request line to args, split
// as Redis's sdssplitargs splits them:
//
//	set key "a value with \"quotes\", \x00 and \n" 'single \' quoted'
//
// Arguments are separated by blanks. Double quotes allow the escapes \xHH,
// \n, \r, \t, \b, \a and \<any byte>; single quotes allow only \'. A quote
// may start in the middle of an argument (a"b c" is "ab c"), but a closing
// quote must be followed by a blank or the end of the line. It reports false
// for unbalanced quotes or a closing quote followed by something else, as
// Redis does. Like Redis's C string, the line ends at its first NUL byte.
//
// Quoted arguments are decoded in place (an argument is never longer than
// its quoted form), so the arguments point into line and nothing is
// allocated.
func splitArgs(args [][]byte, line []byte) ([][]byte, bool) {
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	n := len(line)
	at := func(i int) byte { // the C string's byte i: 0 past the end
		if i < n {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if p == n {
			return args, true
		}
		start, w := p, p // the argument is written to line[start:w]
		inDouble, inSingle := false, false
		for done := false; !done; {
			c := at(p)
			switch {
			case inDouble:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
					line[w] = unhex(at(p+2))<<4 | unhex(at(p+3))
					w++
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					line[w] = unescape(line[p])
					w++
				case c == '"':
					if next := at(p + 1); next != 0 && !isSpace(next) {
						return args, false
					}
					done = true
				case c == 0:
					return args, false
				default:
					line[w] = c
					w++
				}
			case inSingle:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					line[w] = '\''
					w++
				case c == '\'':
					if next := at(p + 1); next != 0 && !isSpace(next) {
						return args, false
					}
					done = true
				case c == 0:
					return args, false
				default:
					line[w] = c
					w++
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inDouble = true
				case '\'':
					inSingle = true
				default:
					line[w] = c
					w++
				}
			}
			if p < n {
				p++
			}
		}
		args = append(args, line[start:w:w])
	}
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// unescape is the byte a backslash escape stands for inside double quotes.
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
