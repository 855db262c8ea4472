package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestPlaceholder(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 2})
	lease := Cache{LeaseToken: 7, LeaseUntil: clk.nowMS() + 5000}
	var h Handle
	s.Open(&h, []byte("k"), nil)
	if err := h.UpdateCache(lease); err != nil {
		t.Fatal(err)
	}
	if h.Exists() || h.Kind() != KindNone || h.Value() != nil || h.ExpireAt() != 0 || h.Version() != 0 {
		t.Fatalf("placeholder visible: exists %v kind %v", h.Exists(), h.Kind())
	}
	if c, ok := h.Cache(); !ok || c != lease {
		t.Fatalf("Cache() = %+v %v", c, ok)
	}
	h.Close()
	if s.Len() != 0 || s.Stats().Keys != 0 || s.Stats().Expires != 0 {
		t.Fatalf("placeholder counted: %+v", s.Stats())
	}
	if s.Stats().Memory == 0 {
		t.Fatal("placeholder costs no memory")
	}
	if k, ok := s.RandomKey(nil, nil); ok {
		t.Fatalf("RandomKey found %q", k)
	}
	if s.Scan(0, 100, nil, func(k []byte, _ Kind, _ int64) { t.Errorf("Scan returned %q", k) }) != 0 {
		t.Fatal("scan not done")
	}
	// Hand-off copies it, as a placeholder, so a lease survives a move.
	seen := 0
	s.ForEachInSlots(func(uint16) bool { return true }, func(e *Entry) {
		seen++
		if string(e.Key) != "k" || e.Kind != KindNone || !e.HasCache || e.Cache != lease {
			t.Errorf("ForEachInSlots returned %+v", e)
		}
	}, nil)
	if seen != 1 {
		t.Errorf("ForEachInSlots saw %d entries, want the placeholder", seen)
	}

	// It reopens with its metadata, and lives until the lease ends.
	s.Open(&h, []byte("k"), nil)
	if c, ok := h.Cache(); !ok || c.LeaseToken != 7 {
		t.Fatalf("reopened placeholder: %+v %v", c, ok)
	}
	h.Close()
	clk.advance(5001)
	s.Open(&h, []byte("k"), nil)
	if _, ok := h.Cache(); ok {
		t.Fatal("placeholder outlived its lease")
	}
	h.Close()
	if st := s.Stats(); st.Expired != 0 || st.Memory != 0 {
		t.Fatalf("placeholder expiry counted or leaked: %+v", st)
	}

	// Set turns a placeholder into a key and drops the metadata.
	lease.LeaseUntil = clk.nowMS() + 5000
	s.Open(&h, []byte("k"), nil)
	if err := h.UpdateCache(lease); err != nil {
		t.Fatal(err)
	}
	if err := h.Set([]byte("v"), KindString, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Cache(); ok || !h.Exists() || h.ExpireAt() != 0 || h.Version() == 0 {
		t.Fatal("Set on a placeholder kept its metadata or expiry")
	}
	h.Close()
	if s.Len() != 1 {
		t.Fatal("not counted after Set")
	}

	// SetCache turns one into a key with metadata; Delete removes one.
	for _, key := range []string{"a", "b"} {
		s.Open(&h, []byte(key), nil)
		if err := h.UpdateCache(lease); err != nil {
			t.Fatal(err)
		}
		h.Close()
	}
	s.Open(&h, []byte("a"), nil)
	if err := h.SetCache([]byte("va"), 0, Cache{FreshUntil: 9}); err != nil {
		t.Fatal(err)
	}
	if c, ok := h.Cache(); !ok || c != (Cache{FreshUntil: 9}) || string(h.Value()) != "va" {
		t.Fatalf("SetCache on placeholder: %+v %q", c, h.Value())
	}
	h.Close()
	s.Open(&h, []byte("b"), nil)
	h.Delete()
	h.Close()
	s.Open(&h, []byte("b"), nil)
	if _, ok := h.Cache(); ok {
		t.Fatal("Delete left the placeholder")
	}
	// UpdateCache with no lease creates nothing, and removes a placeholder.
	if err := h.UpdateCache(Cache{FreshUntil: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Cache(); ok {
		t.Fatal("UpdateCache without a lease created a placeholder")
	}
	if err := h.UpdateCache(lease); err != nil {
		t.Fatal(err)
	}
	if err := h.UpdateCache(Cache{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Cache(); ok {
		t.Fatal("UpdateCache without a lease kept the placeholder")
	}
	h.Close()
	if s.Len() != 2 {
		t.Fatalf("Len %d, want 2", s.Len())
	}
	checkConsistent(t, s)
}

func TestAppendOnPlaceholder(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 1})
	var h Handle
	s.Open(&h, []byte("k"), nil)
	if err := h.UpdateCache(Cache{LeaseToken: 1, LeaseUntil: clk.nowMS() + 10}); err != nil {
		t.Fatal(err)
	}
	if n, err := h.Append([]byte("abc")); err != nil || n != 3 {
		t.Fatalf("Append = %d %v", n, err)
	}
	if _, ok := h.Cache(); ok || h.ExpireAt() != 0 || string(h.Value()) != "abc" {
		t.Fatal("Append on a placeholder kept its lease")
	}
	h.Delete()
	if err := h.UpdateCache(Cache{LeaseToken: 1, LeaseUntil: clk.nowMS() + 10}); err != nil {
		t.Fatal(err)
	}
	if n, err := h.SetRange(2, []byte("x")); err != nil || n != 3 {
		t.Fatalf("SetRange = %d %v", n, err)
	}
	if _, ok := h.Cache(); ok || string(h.Value()) != "\x00\x00x" {
		t.Fatalf("SetRange on a placeholder: %q", h.Value())
	}
	h.Close()
	checkConsistent(t, s)
}

func TestCacheMetadata(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1})
	c := Cache{FreshUntil: 1, LeaseToken: 2, LeaseUntil: 3}
	var h Handle
	s.Open(&h, []byte("k"), nil)
	if err := h.SetCache([]byte("value"), 0, c); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.Cache(); !ok || got != c || string(h.Value()) != "value" || h.Kind() != KindString {
		t.Fatalf("after SetCache: %+v %v %q", got, ok, h.Value())
	}
	c.LeaseToken = 0
	if err := h.UpdateCache(c); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Cache(); got != c || string(h.Value()) != "value" {
		t.Fatalf("after UpdateCache: %+v %q", got, h.Value())
	}
	if err := h.Set([]byte("plain"), KindString, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Cache(); ok {
		t.Fatal("Set kept cache metadata")
	}
	// Adding metadata to a plain key: in place when the slot has room (a
	// value grown by Append has some), else by moving the record.
	for _, n := range []int{1, 20, 100, 5000, 100000} {
		val := bytes.Repeat([]byte{'v'}, n)
		if err := h.Set(val, KindString, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Append([]byte("!")); err != nil {
			t.Fatal(err)
		}
		val = append(val, '!')
		ver := h.Version()
		if err := h.UpdateCache(c); err != nil {
			t.Fatal(err)
		}
		if got, ok := h.Cache(); !ok || got != c || !bytes.Equal(h.Value(), val) || h.Version() != ver {
			t.Fatalf("size %d: UpdateCache on plain key: %+v %v, value ok %v", n, got, ok, bytes.Equal(h.Value(), val))
		}
		// Append keeps the metadata.
		if _, err := h.Append([]byte("?")); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.Cache(); !ok || !bytes.Equal(h.Value(), append(val, '?')) {
			t.Fatal("Append lost the metadata or the value")
		}
		if err := h.Set([]byte("x"), KindString, 0); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	checkConsistent(t, s)
}

func TestAppend(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1})
	var h Handle
	s.Open(&h, []byte("k"), nil)
	var want []byte
	for i := 0; len(want) < 300000; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%1000)
		n, err := h.Append(chunk)
		want = append(want, chunk...)
		if err != nil || n != len(want) {
			t.Fatalf("Append = %d %v, want %d", n, err, len(want))
		}
	}
	if !bytes.Equal(h.Value(), want) {
		t.Fatal("appended value differs")
	}
	// Appending the value to itself.
	if n, err := h.Append(h.Value()); err != nil || n != 2*len(want) {
		t.Fatalf("self-append = %d %v", n, err)
	}
	want = append(want, want...)
	if !bytes.Equal(h.Value(), want) {
		t.Fatal("self-appended value differs")
	}
	h.Close()
	// Empty append creates an empty string.
	s.Open(&h, []byte("e"), nil)
	if n, err := h.Append(nil); err != nil || n != 0 || !h.Exists() {
		t.Fatalf("empty Append = %d %v exists %v", n, err, h.Exists())
	}
	h.Close()
	checkConsistent(t, s)
}

func TestAppendInPlace(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1})
	var h Handle
	s.Open(&h, []byte("k"), nil)
	defer h.Close()
	if _, err := h.Append([]byte("a")); err != nil {
		t.Fatal(err)
	}
	// "k" with 8 header bytes and 1 value byte fits a 16-byte slot: 6 more
	// bytes go in place.
	e := h.e()
	loc := e.loc
	if _, err := h.Append([]byte("bcdefg")); err != nil {
		t.Fatal(err)
	}
	if e.loc != loc || string(h.Value()) != "abcdefg" {
		t.Fatalf("append with room moved the record: %q", h.Value())
	}
	if _, err := h.Append([]byte("h")); err != nil {
		t.Fatal(err)
	}
	if e.loc == loc || string(h.Value()) != "abcdefgh" {
		t.Fatalf("append without room: %q", h.Value())
	}
	// It grew with room to spare: the next appends stay.
	loc = e.loc
	if _, err := h.Append([]byte("ijk")); err != nil || e.loc != loc {
		t.Fatalf("append after growth moved: %v", err)
	}
}

func TestSetRange(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1})
	var h Handle
	s.Open(&h, []byte("k"), nil)
	defer h.Close()
	for _, tc := range []struct {
		off  int
		b    string
		want string
	}{
		{0, "", ""}, // no key is created
		{3, "abc", "\x00\x00\x00abc"},
		{0, "X", "X\x00\x00abc"},
		{4, "", "X\x00\x00abc"},
		{8, "yz", "X\x00\x00abc\x00\x00yz"},
		{2, "LONGER THAN BEFORE", "X\x00LONGER THAN BEFORE"},
		{1000, "!", "X\x00LONGER THAN BEFORE" + string(make([]byte, 1000-20)) + "!"},
	} {
		n, err := h.SetRange(tc.off, []byte(tc.b))
		if err != nil || n != len(tc.want) || string(h.Value()) != tc.want {
			t.Fatalf("SetRange(%d, %q) = %d %v, value %q, want %q", tc.off, tc.b, n, err, h.Value(), tc.want)
		}
		if tc.want == "" && h.Exists() {
			t.Fatal("empty SetRange created the key")
		}
	}
	// Padding zeroes bytes a slot held before (a reused slot is not clean).
	if err := h.Set(bytes.Repeat([]byte{'#'}, 40), KindString, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Set([]byte("ab"), KindString, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Append([]byte("c")); err != nil { // in place: slack past the value is old data
		t.Fatal(err)
	}
	if n, err := h.SetRange(6, []byte("z")); err != nil || string(h.Value()) != "abc\x00\x00\x00z" {
		t.Fatalf("SetRange over a dirty slot = %d %v %q", n, err, h.Value())
	}
	// SetRange of its own bytes.
	if _, err := h.SetRange(1, h.Value()[:3]); err != nil || string(h.Value()) != "aabc\x00\x00z" {
		t.Fatalf("SetRange of itself: %q", h.Value())
	}
	if _, err := h.SetRange(-1, []byte("x")); !errors.Is(err, ErrOffset) {
		t.Fatalf("negative offset: %v", err)
	}
	if _, err := h.SetRange(MaxValueLen, []byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("offset past 512 MiB: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	defer func(k, v int) { maxKeyLen, maxValueLen = k, v }(maxKeyLen, maxValueLen)
	maxKeyLen, maxValueLen = 10, 100
	s, _ := newTest(t, Config{Shards: 1})
	var h Handle
	s.Open(&h, []byte("k"), nil)
	if err := h.Set(make([]byte, 101), KindString, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set: %v", err)
	}
	if err := h.Set(make([]byte, 100), KindString, 0); err != nil {
		t.Fatalf("Set at the limit: %v", err)
	}
	if _, err := h.Append([]byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append: %v", err)
	}
	if _, err := h.SetRange(100, []byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetRange: %v", err)
	}
	if len(h.Value()) != 100 {
		t.Fatal("failed write changed the value")
	}
	h.Close()
	for _, k := range []string{"0123456789", "0123456789X"} {
		s.Open(&h, []byte(k), nil)
		errs := []error{
			h.Set([]byte("v"), KindString, 0),
			h.UpdateCache(Cache{LeaseUntil: start + 1}),
		}
		_, err := h.Append([]byte("v"))
		errs = append(errs, err)
		_, err = h.SetRange(1, []byte("v"))
		errs = append(errs, err)
		for i, err := range errs {
			if (len(k) > 10) != errors.Is(err, ErrTooLarge) {
				t.Errorf("key of %d bytes, write %d: %v", len(k), i, err)
			}
		}
		h.Delete()
		h.Close()
	}
	if s.Len() != 1 {
		t.Fatal("a failed write created a key")
	}
	checkConsistent(t, s)
}
