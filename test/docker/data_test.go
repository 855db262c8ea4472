//go:build dockertest

package docker

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The buckets: CL.THROTTLE key 99 100 86400, so 100 tokens a day, one back
// every 864 s: within a test run a bucket regains at most one token, and
// one that comes back full was reset.
const (
	bucketBurst  = 99 // CL.THROTTLE's max_burst: a capacity of 100
	bucketCount  = 100
	bucketPeriod = 86400 // seconds
	bucketLeft   = 50    // drained to half
)

// dataset is what a test writes before a fault and counts after it.
type dataset struct {
	keys      []string
	values    map[string]string
	buckets   []string
	drainedAt time.Time
}

func newDataset(prefix string, keys, buckets int) *dataset {
	d := &dataset{values: map[string]string{}}
	for i := range keys {
		k := fmt.Sprintf("%s:key:%05d", prefix, i)
		d.keys = append(d.keys, k)
		d.values[k] = "v" + strconv.Itoa(i) + ":" + prefix
	}
	for i := range buckets {
		d.buckets = append(d.buckets, fmt.Sprintf("%s:bucket:%03d", prefix, i))
	}
	return d
}

// write sets every key (pipelined, 500 at a time). Writes that fail are
// retried for up to 10 s, since a cluster that just agreed on a table may
// still answer TRYAGAIN; it returns how many never got OK.
func (d *dataset) write(ctx context.Context, cc *redis.ClusterClient) (failed int, err error) {
	pending := d.keys
	for deadline := time.Now().Add(10 * time.Second); len(pending) > 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var retry []string
		for i := 0; i < len(pending); i += 500 {
			batch := pending[i:min(i+500, len(pending))]
			cmds, _ := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range batch {
					p.Set(ctx, k, d.values[k], 0)
				}
				return nil
			})
			for j, c := range cmds {
				if c.Err() != nil {
					retry = append(retry, batch[j])
					err = c.Err()
				}
			}
		}
		pending = retry
	}
	return len(pending), err
}

// throttle runs CL.THROTTLE on a bucket taking quantity tokens (0 only
// reads) and returns the tokens remaining.
func throttle(ctx context.Context, cc interface {
	Do(context.Context, ...any) *redis.Cmd
}, key string, quantity int) (int64, error) {
	r, err := cc.Do(ctx, "CL.THROTTLE", key, bucketBurst, bucketCount, bucketPeriod, quantity).Int64Slice()
	if err != nil {
		return 0, err
	}
	if len(r) != 5 {
		return 0, fmt.Errorf("CL.THROTTLE %s: %d integers, want 5", key, len(r))
	}
	return r[2], nil
}

// drain takes tokens from each bucket until bucketLeft remain (a new bucket
// is full: 100), retrying failed commands, and returns the buckets it could
// not drain.
func (d *dataset) drain(ctx context.Context, cc *redis.ClusterClient) (failed int, err error) {
	for _, b := range d.buckets {
		var e error
		for try := 0; try < 10; try++ {
			var left int64
			left, e = throttle(ctx, cc, b, 0)
			if e == nil && left > bucketLeft {
				left, e = throttle(ctx, cc, b, int(left-bucketLeft))
			}
			if e == nil && left != bucketLeft {
				e = fmt.Errorf("bucket %s has %d tokens left after draining, want %d", b, left, bucketLeft)
				break
			}
			if e == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if e != nil {
			failed++
			err = e
		}
	}
	d.drainedAt = time.Now()
	return failed, err
}

// counts is what a count finds.
type counts struct {
	keys, lost, wrong, unreadable int
	buckets, fuller, bucketErrs   int
	fullest                       int64 // most tokens any bucket had
	firstLost, firstFuller        string
	lastErr                       error
}

func (c counts) String() string {
	return fmt.Sprintf("keys lost %d/%d (wrong value %d, unreadable %d), buckets fuller than left %d/%d (unreadable %d, fullest %d tokens, left %d)",
		c.lost, c.keys, c.wrong, c.unreadable, c.fuller, c.buckets, c.bucketErrs, c.fullest, bucketLeft)
}

// count reads every key and bucket. A key is lost when it is missing or has
// another value; unreadable when the read failed (retried for up to 20 s,
// so a table still settling does not count). A bucket is fuller when it has
// more tokens than were left plus what it regained since (one per 864 s).
func (d *dataset) count(ctx context.Context, cc *redis.ClusterClient) counts {
	c := counts{keys: len(d.keys), buckets: len(d.buckets)}
	pending := d.keys
	for deadline := time.Now().Add(20 * time.Second); len(pending) > 0; time.Sleep(time.Second) {
		var retry []string
		for i := 0; i < len(pending); i += 500 {
			batch := pending[i:min(i+500, len(pending))]
			cmds, _ := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range batch {
					p.Get(ctx, k)
				}
				return nil
			})
			for j, cmd := range cmds {
				v, err := cmd.(*redis.StringCmd).Result()
				switch {
				case err == redis.Nil:
					c.lost++
					c.firstLost = cmp(c.firstLost, batch[j])
				case err != nil:
					retry = append(retry, batch[j])
					c.lastErr = err
				case v != d.values[batch[j]]:
					c.lost++
					c.wrong++
					c.firstLost = cmp(c.firstLost, batch[j])
				}
			}
		}
		pending = retry
		if time.Now().After(deadline) {
			break
		}
	}
	c.unreadable = len(pending)
	refill := int64(time.Since(d.drainedAt) / (bucketPeriod * time.Second / bucketCount))
	for _, b := range d.buckets {
		var left int64
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
			if left, err = throttle(ctx, cc, b, 0); err == nil || time.Now().After(deadline) {
				break
			}
		}
		switch {
		case err != nil:
			c.bucketErrs++
			c.lastErr = err
		case left > bucketLeft+refill:
			c.fuller++
			c.firstFuller = cmp(c.firstFuller, fmt.Sprintf("%s (%d tokens)", b, left))
		}
		c.fullest = max(c.fullest, left)
	}
	return c
}

func cmp(first, s string) string {
	if first == "" {
		return s
	}
	return first
}

// writeRacingKill writes the keys in pipelines of 100, once each with no
// retry, and starts kill after the first start keys, so the writes that
// follow race it; it stops writing once kill returned (have keys to spare). Keys not written or whose
// write did not get OK are dropped from d: it then holds exactly the
// acknowledged writes. It returns how many writes got OK while kill ran,
// how long kill took and when it returned.
func (d *dataset) writeRacingKill(ctx context.Context, cc *redis.ClusterClient, start int, kill func() error) (ackedDuring int, killTook time.Duration, killEnd time.Time, err error) {
	var killed chan error
	var killDone atomic.Bool
	var acked []string
	for i := 0; i < len(d.keys) && !killDone.Load(); i += 100 {
		if killed == nil && i >= start {
			killed = make(chan error, 1)
			killStart := time.Now()
			go func() {
				err := kill()
				killEnd = time.Now()
				killTook = killEnd.Sub(killStart)
				killDone.Store(true)
				killed <- err
			}()
		}
		batch := d.keys[i:min(i+100, len(d.keys))]
		// A batch for a node that just died must not hold the kill's
		// aftermath up: 2 s at most.
		bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cmds, _ := cc.Pipelined(bctx, func(p redis.Pipeliner) error {
			for _, k := range batch {
				p.Set(bctx, k, d.values[k], 0)
			}
			return nil
		})
		cancel()
		for j, c := range cmds {
			if c.Err() == nil {
				acked = append(acked, batch[j])
				if killed != nil {
					ackedDuring++
				}
			}
		}
	}
	if killed == nil {
		return 0, 0, time.Time{}, fmt.Errorf("%d keys, kill after %d: nothing raced it", len(d.keys), start)
	}
	err = <-killed
	d.keys = acked
	return ackedDuring, killTook, killEnd, err
}
