package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestForward(t *testing.T) {
	h := newHarness(t)
	nodes := h.startN(3)
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	n1 := nodes[0].c
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("every reply type", func(t *testing.T) {
		for name, write := range replies {
			var direct, forwarded traceWriter
			write(&direct)
			if err := n1.Forward(ctx, "n2", [][]byte{[]byte(name)}, &forwarded); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if direct.String() != forwarded.String() {
				t.Errorf("%s: forwarded\n  %s\nwant\n  %s", name, forwarded.String(), direct.String())
			}
		}
	})
	t.Run("to itself", func(t *testing.T) {
		var w traceWriter
		if err := n1.Forward(ctx, "n1", [][]byte{[]byte("whoami")}, &w); err != nil || w.String() != `bulk "n1"` {
			t.Errorf("got %q, %v", w.String(), err)
		}
	})
	t.Run("not owner", func(t *testing.T) {
		var w traceWriter
		if err := n1.Forward(ctx, "n3", [][]byte{[]byte("notowned")}, &w); !errors.Is(err, ErrNotOwner) || len(w.calls) > 0 {
			t.Errorf("got %v and %q, want ErrNotOwner and nothing written", err, w.String())
		}
	})
	t.Run("unknown node", func(t *testing.T) {
		if err := n1.Forward(ctx, "n9", [][]byte{[]byte("whoami")}, &traceWriter{}); !errors.Is(err, ErrUnknownNode) {
			t.Errorf("got %v, want ErrUnknownNode", err)
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 200 {
			wg.Go(func() {
				payload := []byte(fmt.Sprintf("payload-%d-%s", i, make([]byte, i*50)))
				var w traceWriter
				to := []string{"n2", "n3"}[i%2]
				if err := n1.Forward(ctx, to, [][]byte{[]byte("echo"), payload}, &w); err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("bulk %q", payload); w.String() != want {
					errs <- fmt.Errorf("reply %.40q…, want %.40q…", w.String(), want)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		n2 := nodes[1].h
		n2.mu.Lock()
		n2.release = make(chan struct{})
		n2.mu.Unlock()
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := n1.Forward(short, "n2", [][]byte{[]byte("block")}, &traceWriter{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the deadline", err)
		}
		close(n2.release)
		// The abandoned reply arrives and is dropped; the connection
		// goes on serving.
		var w traceWriter
		if err := n1.Forward(ctx, "n2", [][]byte{[]byte("whoami")}, &w); err != nil || w.String() != `bulk "n2"` {
			t.Errorf("after a deadline: %q, %v", w.String(), err)
		}
	})
	t.Run("dead peer", func(t *testing.T) {
		n3 := nodes[2]
		n3.h.mu.Lock()
		n3.h.release = make(chan struct{})
		n3.h.mu.Unlock()
		defer close(n3.h.release)
		errc := make(chan error, 4)
		for range 4 {
			go func() { errc <- n1.Forward(ctx, "n3", [][]byte{[]byte("block")}, &traceWriter{}) }()
		}
		waitFor(t, 5*time.Second, "the calls to reach n3", func() bool {
			n3.h.mu.Lock()
			defer n3.h.mu.Unlock()
			return n3.h.served > 0
		})
		h.net.Partition([]string{n3.host})
		cut := time.Now()
		for range 4 {
			if err := <-errc; !errors.Is(err, ErrPeerDown) {
				t.Errorf("got %v, want ErrPeerDown", err)
			}
		}
		t.Logf("calls in flight to a peer cut off failed %v after the cut", time.Since(cut).Round(time.Microsecond))
		if err := n1.Forward(ctx, "n3", [][]byte{[]byte("whoami")}, &traceWriter{}); !errors.Is(err, ErrPeerDown) {
			t.Errorf("a new call to the cut-off peer: %v, want ErrPeerDown", err)
		}
	})
}
