package ring

import "testing"

// The expected slots are what Redis 7.0.15's CLUSTER KEYSLOT answered; the hash-tag
// cases are the examples of the Redis Cluster specification.
func TestKeySlot(t *testing.T) {
	cases := []struct {
		key  string
		slot uint16
	}{
		{"", 0},
		{"foo", 12182},
		{"bar", 5061},
		{"hello", 866},
		{"123456789", 12739}, // CRC16-XMODEM check value 0x31C3
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", 8363},    // empty first tag: the whole key is hashed
		{"foo{{bar}}zap", 4015}, // tag is "{bar"
		{"foo{bar}{zap}", 5061}, // only the first tag counts: "bar"
		{"{}", 15257},           // empty tag: whole key
		{"{a", 10276},           // no closing brace: whole key
	}
	for _, c := range cases {
		if got := KeySlot([]byte(c.key)); got != c.slot {
			t.Errorf("KeySlot(%q) = %d, want %d", c.key, got, c.slot)
		}
	}
}

func FuzzKeySlot(f *testing.F) {
	f.Add([]byte("{user}.x"))
	f.Fuzz(func(t *testing.T, key []byte) {
		s := KeySlot(key)
		if s >= Slots {
			t.Fatalf("slot %d out of range", s)
		}
		// A key and its own hash tag wrapped in braces land together.
		if i := indexByte(key, '{'); i >= 0 {
			if j := indexByte(key[i+1:], '}'); j > 0 {
				if tag := key[i+1 : i+1+j]; KeySlot(append([]byte("{"), append(append([]byte{}, tag...), '}')...)) != s {
					t.Fatalf("key %q and its tag %q disagree", key, tag)
				}
			}
		}
	})
}

func BenchmarkKeySlot(b *testing.B) {
	b.ReportAllocs()
	key := []byte("user:1000:profile")
	for b.Loop() {
		KeySlot(key)
	}
}
