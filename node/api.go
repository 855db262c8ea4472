package node

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/store"
)

// The typed Go API: what applications do most. A key this node owns (every
// key, outside a cluster) is served in-process with no parsing or reply
// encoding; a key another node owns goes to that node as the matching
// command, exactly as Do would send it. Each call is one atomic step on its
// key, like the command.

// remote reports whether key is owned by another node of the cluster.
func (n *Node) remote(key string) bool {
	if n.cluster == nil {
		return false
	}
	t := n.cluster.Table()
	return t != nil && t.Owner(ring.KeySlot(keyBytes(key))) != n.id
}

// replyError turns an error reply of a remote command into the typed error
// the local path returns.
func replyError(err error) error {
	var e Error
	if errors.As(err, &e) {
		switch {
		case strings.HasPrefix(string(e), "WRONGTYPE"):
			return ErrWrongType
		case strings.HasPrefix(string(e), "NOLEASE"):
			return ErrNoLease
		}
	}
	return err
}

// ErrNotFound is returned by Get for a key that does not exist.
var ErrNotFound = errors.New("node: key not found")

// ErrWrongType is returned for a key that holds another kind of value (a
// rate-limit bucket where a string was expected).
var ErrWrongType = Error(errWrongType)

// Get returns a copy of the value of key, or ErrNotFound.
func (n *Node) Get(ctx context.Context, key string) ([]byte, error) {
	v, ok, err := n.AppendValue(ctx, nil, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// AppendValue appends the value of key to dst and reports whether the key
// exists. With a reused dst it allocates nothing.
func (n *Node) AppendValue(ctx context.Context, dst []byte, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return dst, false, err
	}
	if n.remote(key) {
		v, err := n.Do(ctx, "GET", key)
		if err != nil || v == nil {
			return dst, false, replyError(err)
		}
		return append(dst, v.([]byte)...), true, nil
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	defer h.Close()
	if !h.Exists() {
		n.stats.misses.Add(0, 1)
		return dst, false, nil
	}
	if h.Kind() != store.KindString {
		return dst, false, ErrWrongType
	}
	n.stats.hits.Add(0, 1)
	return append(dst, h.Value()...), true, nil
}

// Set stores value at key, with a time to live when ttl > 0 (SET key value PX ttl).
func (n *Node) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl < 0 {
		return Error(invalidExpire("set"))
	}
	if n.remote(key) {
		args := []any{"SET", key, value}
		if ttl > 0 {
			args = append(args, "PX", max(ttl.Milliseconds(), 1))
		}
		_, err := n.Do(ctx, args...)
		return replyError(err)
	}
	var at int64
	if ttl > 0 {
		at = n.store.Now() + max(ttl.Milliseconds(), 1)
	}
	var h store.Handle
	n.store.Open(&h, keyBytes(key), nil)
	err := h.Set(value, store.KindString, at)
	h.Close()
	if err != nil {
		return storeError(err)
	}
	n.invalidate(key)
	return nil
}

// Delete removes keys and returns how many existed.
func (n *Node) Delete(ctx context.Context, keys ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	deleted := 0
	for _, key := range keys {
		if n.remote(key) {
			v, err := n.Do(ctx, "DEL", key)
			if err != nil {
				return deleted, replyError(err)
			}
			deleted += int(v.(int64))
			continue
		}
		var h store.Handle
		n.store.Open(&h, keyBytes(key), nil)
		if h.Exists() {
			deleted++
			h.Delete()
		} else if _, leased := h.Cache(); leased {
			h.Delete()
		}
		h.Close()
		n.invalidate(key)
	}
	return deleted, nil
}

// invalidate tells tracking clients that key changed through the Go API.
func (n *Node) invalidate(key string) {
	if !n.tracking.active() {
		return
	}
	n.tracking.mu.Lock()
	defer n.tracking.mu.Unlock()
	n.tracking.invalidateLocked(nil, keyBytes(key))
}

// storeError turns a store error into the error reply a client would see.
func storeError(err error) error {
	switch {
	case errors.Is(err, store.ErrOOM):
		return Error(errOOM)
	case errors.Is(err, store.ErrTooLarge):
		return Error(errStringLen)
	case errors.Is(err, store.ErrOffset):
		return Error(errOffsetRange)
	}
	return err
}
