package store

import "testing"

// TestOpenAt: a batch that read the clock once sees keys as of that time:
// a key is there until its expiry and gone at it, whatever the store's
// clock says meanwhile.
func TestOpenAt(t *testing.T) {
	s, clk := newTest(t, Config{})
	mustSet(t, s, "k", "v", start+100)
	clk.advance(200) // past the expiry by the store's own clock
	var h Handle
	s.OpenAt(&h, []byte("k"), nil, start+99)
	if !h.Exists() || string(h.Value()) != "v" || h.Now() != start+99 {
		t.Fatalf("at start+99: exists %v, value %q, now %d", h.Exists(), h.Value(), h.Now())
	}
	h.Close()
	s.OpenAt(&h, []byte("k"), nil, start+101)
	if h.Exists() {
		t.Fatal("the key is served after its expiry")
	}
	h.Close()
}
