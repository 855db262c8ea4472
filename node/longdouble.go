package node

import (
	"math/big"
	"strings"
)

// INCRBYFLOAT computes in C's long double on Redis (x87 80-bit: a 64-bit
// mantissa and a 15-bit exponent) and prints with "%.17Lf" stripped of
// trailing zeros. Sluice does the same arithmetic with big.Float at 64 bits of
// precision, so 0.1+0.2 is "0.3" here too and results match Redis's digit for
// digit.

const ldPrec = 64

// ldMax is LDBL_MAX, the largest finite long double: (2 - 2^-63) * 2^16383.
var ldMax = func() *big.Float {
	m := new(big.Float).SetPrec(ldPrec).SetMantExp(big.NewFloat(1), 16384)
	ulp := new(big.Float).SetPrec(ldPrec).SetMantExp(big.NewFloat(1), 16384-64)
	return m.Sub(m, ulp)
}()

// ldMin is the smallest positive subnormal long double, 2^-16445.
var ldMin = new(big.Float).SetPrec(ldPrec).SetMantExp(big.NewFloat(1), -16445)

// parseLongDouble reads a number as Redis's string2ld does with strtold:
// decimal or hexadecimal, "inf" and "infinity" in any case, no surrounding
// space; NaN, overflow and underflow to zero are refused.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= 5*1024 || isSpace(b[0]) {
		return nil, false
	}
	s := string(b)
	body, neg := s, false
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	if l := strings.ToLower(body); l == "inf" || l == "infinity" {
		return new(big.Float).SetInf(neg), true
	}
	if strings.ContainsAny(body, "_ \t\n\v\f\r") || strings.EqualFold(body, "nan") {
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 0, ldPrec, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	abs := new(big.Float).Abs(f)
	if abs.Cmp(ldMax) > 0 || (abs.Sign() != 0 && abs.Cmp(ldMin) < 0) {
		return nil, false // strtold sets ERANGE: Redis refuses it
	}
	return f, true
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

// formatLongDouble appends f as Redis's ld2string(LD_STR_HUMAN) does.
func formatLongDouble(dst []byte, f *big.Float) []byte {
	start := len(dst)
	dst = f.Append(dst, 'f', 17)
	if i := strings.IndexByte(string(dst[start:]), '.'); i >= 0 {
		for dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
		if dst[len(dst)-1] == '.' {
			dst = dst[:len(dst)-1]
		}
	}
	if string(dst[start:]) == "-0" {
		dst = append(dst[:start], '0')
	}
	return dst
}

// addLongDouble adds as long doubles; ok is false when the result is not finite.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	sum := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(a, b)
	if new(big.Float).Abs(sum).Cmp(ldMax) > 0 {
		return nil, false
	}
	return sum, true
}
