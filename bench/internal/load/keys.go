package load

import (
	"math"
	"math/rand/v2"
)

// KeyDigits is the width of the number in a key: redis-benchmark replaces
// __rand_int__ with 12 zero-padded digits, so "key:__rand_int__" there and
// Key("key:", i) here name the same 16-byte keys.
const KeyDigits = 12

// AppendKey appends prefix and i in KeyDigits zero-padded digits.
func AppendKey(b []byte, prefix string, i uint64) []byte {
	b = append(b, prefix...)
	var d [KeyDigits]byte
	for j := KeyDigits - 1; j >= 0; j-- {
		d[j] = byte('0' + i%10)
		i /= 10
	}
	return append(b, d[:]...)
}

// A Picker chooses key numbers for one connection. It is not safe for
// concurrent use.
type Picker interface {
	Next() uint64
}

// Uniform picks key numbers in [0, n) with equal probability.
func Uniform(n uint64, seed uint64) Picker {
	return &uniform{n: n, r: rand.New(rand.NewPCG(seed, 0x5eed))}
}

type uniform struct {
	n uint64
	r *rand.Rand
}

func (u *uniform) Next() uint64 { return u.r.Uint64N(u.n) }

// Sequence picks from, from+1, … in order, for loading a key range.
func Sequence(from uint64) Picker { return &sequence{next: from} }

type sequence struct{ next uint64 }

func (s *sequence) Next() uint64 {
	s.next++
	return s.next - 1
}

// Zipf is the distribution of YCSB's ZipfianGenerator (Gray et al., "Quickly
// generating billion-record synthetic databases", SIGMOD 1994): key number i
// in [0, n) is drawn with probability proportional to 1/(i+1)^theta. Unlike
// math/rand's Zipf it allows theta < 1, and 0.99, YCSB's default, is the
// usual skew of cache benchmarks. The constants cost O(n) to compute once;
// Pickers made from one Zipf share them.
type Zipf struct {
	n                  uint64
	theta, alpha, eta  float64
	zetan, halfPowThet float64
}

// NewZipf computes the constants of a Zipf distribution over n keys.
func NewZipf(n uint64, theta float64) *Zipf {
	zeta := func(n uint64) float64 {
		s := 0.0
		for i := uint64(1); i <= n; i++ {
			s += 1 / math.Pow(float64(i), theta)
		}
		return s
	}
	z := &Zipf{n: n, theta: theta, zetan: zeta(n)}
	z.alpha = 1 / (1 - theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2)/z.zetan)
	z.halfPowThet = 1 + math.Pow(0.5, theta)
	return z
}

// Picker returns a Picker drawing from z with its own random source.
func (z *Zipf) Picker(seed uint64) Picker {
	return &zipf{z: z, r: rand.New(rand.NewPCG(seed, 0x21bf))}
}

type zipf struct {
	z *Zipf
	r *rand.Rand
}

func (p *zipf) Next() uint64 {
	z := p.z
	u := p.r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.halfPowThet {
		return 1
	}
	i := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(i, z.n-1)
}

// A Source appends one connection's next request to b. It is not safe for
// concurrent use.
type Source interface {
	Append(b []byte) []byte
}

// Command is a request whose argument Key (an index into Args) is replaced
// by Prefix and a key number from Keys for each request; the other
// arguments are sent as they are.
type Command struct {
	Args   []string
	Key    int
	Prefix string
	Keys   Picker

	args [][]byte
	key  []byte
}

// Append implements Source.
func (c *Command) Append(b []byte) []byte {
	if c.args == nil {
		c.args = make([][]byte, len(c.Args))
		for i, a := range c.Args {
			c.args[i] = []byte(a)
		}
	}
	c.key = AppendKey(c.key[:0], c.Prefix, c.Keys.Next())
	b = append(b, '*')
	b = appendUint(b, uint64(len(c.args)))
	b = append(b, '\r', '\n')
	for i, a := range c.args {
		if i == c.Key {
			a = c.key
		}
		b = appendBulk(b, a)
	}
	return b
}

func appendUint(b []byte, v uint64) []byte {
	if v >= 10 {
		b = appendUint(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

// Mix sends A with probability PA and B otherwise.
type Mix struct {
	A, B Source
	PA   float64
	R    *rand.Rand
}

// Append implements Source.
func (m *Mix) Append(b []byte) []byte {
	if m.R.Float64() < m.PA {
		return m.A.Append(b)
	}
	return m.B.Append(b)
}
