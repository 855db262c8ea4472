package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []directive
	}{
		{"empty", "", nil},
		{"one", "port 7000\n", []directive{{1, "port", []string{"7000"}}}},
		{"no final newline", "port 7000", []directive{{1, "port", []string{"7000"}}}},
		{"name case and blanks", "  PORT \t 7000  \n", []directive{{1, "port", []string{"7000"}}}},
		{"comments and blank lines", "# a comment\n\n   # indented\nport 1\n\t\nbind ::1\n",
			[]directive{{4, "port", []string{"1"}}, {6, "bind", []string{"::1"}}}},
		{"CRLF", "port 1\r\nbind x\r\n", []directive{{1, "port", []string{"1"}}, {2, "bind", []string{"x"}}}},
		{"hash inside a value", "requirepass a#b", []directive{{1, "requirepass", []string{"a#b"}}}},
		{"several arguments", "save 900 1", []directive{{1, "save", []string{"900", "1"}}}},
		{"no arguments", "port", []directive{{1, "port", []string{}}}},
		{"double quotes", `requirepass "with space"`, []directive{{1, "requirepass", []string{"with space"}}}},
		{"empty quotes", `requirepass ""`, []directive{{1, "requirepass", []string{""}}}},
		{"escapes", `x "a\"b\\c\n\r\t\b\a\q"`, []directive{{1, "x", []string{"a\"b\\c\n\r\t\b\aq"}}}},
		{"hex escapes", `x "\x41\x4a\xff\x4"`, []directive{{1, "x", []string{"AJ\xffx4"}}}},
		{"single quotes", `x 'it\'s "raw" \n'`, []directive{{1, "x", []string{`it's "raw" \n`}}}},
		{"quote inside an argument", `x foo"bar baz" y`, []directive{{1, "x", []string{"foobar baz", "y"}}}},
		{"quoted name", `"port" 1`, []directive{{1, "port", []string{"1"}}}},
		{"vertical tab inside an argument", "x a\vb", []directive{{1, "x", []string{"a\vb"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig("test.conf", strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`requirepass "abc`, "test.conf:1: unbalanced quotes"},
		{"port 1\nrequirepass 'abc", "test.conf:2: unbalanced quotes"},
		{`x "abc\`, "test.conf:1: unbalanced quotes"},
		{`requirepass "abc"def`, "test.conf:1: a closing quote must be followed by a space"},
		{`requirepass 'abc'def`, "test.conf:1: a closing quote must be followed by a space"},
		{"x " + strings.Repeat("a", maxConfigLine), "longer than"},
	} {
		_, err := parseConfig("test.conf", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%.40q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseConfig checks that the parser never panics on any file, and that
// every file it accepts means the same once its directives are written back
// with every argument quoted.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"port 7000\n# comment\nbind 127.0.0.1\n",
		`requirepass "a \"b\" \x41\n"`,
		`x 'it\'s' foo"bar baz"`,
		"maxmemory 100mb\r\n",
		`x "abc`,
		`x "a"b`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := parseConfig("test.conf", strings.NewReader(s))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, d := range ds {
			b.WriteString(quote(d.name))
			for _, a := range d.args {
				b.WriteString(" " + quote(a))
			}
			b.WriteString("\n")
		}
		again, err := parseConfig("test.conf", strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("%q parsed, but its re-quoted form %q does not: %v", s, b.String(), err)
		}
		if len(again) != len(ds) {
			t.Fatalf("%q: %d directives, re-quoted %d", s, len(ds), len(again))
		}
		for i := range ds {
			if again[i].name != ds[i].name || !reflect.DeepEqual(again[i].args, ds[i].args) {
				t.Fatalf("%q: directive %d is %q %q, re-quoted %q %q", s, i, ds[i].name, ds[i].args, again[i].name, again[i].args)
			}
		}
	})
}

// quote writes s as one double-quoted argument, escaping what splitArgs
// unescapes and every byte that is not printable ASCII.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
