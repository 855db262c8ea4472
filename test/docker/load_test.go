//go:build dockertest

package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// load is a client looping SET, GET and CL.THROTTLE over keys spread across
// the slots while faults happen, as an application would. It counts errors
// by phase and kind, and for each slot the longest unavailability: from the
// start of a command that failed to the end of the next one that succeeded,
// attributed to the phase in which it began.
//
// go-redis's ClusterClient refreshes its slot map on MOVED and otherwise
// only every minute: a dead node's slots would stay mapped to it. Like an
// application that cares, the load asks for a refresh after an error (at
// most once a second), so what is measured is the cluster's failover plus
// one refresh, not the client's interval.
type load struct {
	cc    *redis.ClusterClient
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	start time.Time

	mu         sync.Mutex
	lastReload time.Time
	phase      string
	phases     []string                  // in order
	ops        map[string]int            // by phase
	errs       map[string]map[string]int // phase → errClass → count
	slots      map[int]*slotAvail
	hit        map[string]map[int]bool // phase → slots an outage began in
	acked      map[string]int64        // key → the last value a SET of it got OK for
}

type slotAvail struct {
	downSince  time.Time // zero while available
	downPhase  string    // the phase downSince fell in
	worst      time.Duration
	worstPhase string
}

// loadWorkers run at once, each over loadKeys keys (so over that many
// slots), pausing loadPause after each key's three commands: about 450
// commands a second in all, light on a shared 2-core machine. One key per
// worker keeps the slots independent: a worker waiting out timeouts on a
// dead slot does not delay seeing another slot come back, so a slot's
// unavailability is measured to within loadPause. A command waits at most
// loadTimeout.
const (
	loadWorkers = 48
	loadKeys    = 1
	loadPause   = 300 * time.Millisecond
	loadTimeout = 2 * time.Second
)

func startLoad(cc *redis.ClusterClient, phase string) *load {
	l := &load{cc: cc, stop: make(chan struct{}), start: time.Now(),
		ops: map[string]int{}, errs: map[string]map[string]int{}, slots: map[int]*slotAvail{}, acked: map[string]int64{}, hit: map[string]map[int]bool{}}
	l.setPhase(phase)
	for w := range loadWorkers {
		l.wg.Add(1)
		go l.work(w)
	}
	return l
}

// setPhase labels what follows, for the report.
func (l *load) setPhase(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase = p
	if !slices.Contains(l.phases, p) {
		l.phases = append(l.phases, p)
	}
}

func (l *load) work(w int) {
	defer l.wg.Done()
	var keys []string
	for i := range loadKeys {
		keys = append(keys, fmt.Sprintf("{load:%d:%d}", w, i))
	}
	values := make([]int64, len(keys))
	for {
		for i, k := range keys {
			select {
			case <-l.stop:
				return
			default:
			}
			slot := keySlot(k)
			values[i]++
			l.do(slot, k, values[i], func(ctx context.Context) error { return l.cc.Set(ctx, k, values[i], 0).Err() })
			l.do(slot, "", 0, func(ctx context.Context) error {
				err := l.cc.Get(ctx, k).Err()
				if err == redis.Nil {
					return nil // the key was lost: counted at the end, not an error
				}
				return err
			})
			l.do(slot, "", 0, func(ctx context.Context) error {
				// A bucket nobody exhausts: the decision path, not the limit.
				return l.cc.Do(ctx, "CL.THROTTLE", k+":rl", 1000000, 1000000, 1, 1).Err()
			})
			time.Sleep(loadPause)
		}
	}
}

// do runs one command and records it; ackKey's SET of ackValue is
// acknowledged when it succeeds.
func (l *load) do(slot int, ackKey string, ackValue int64, f func(context.Context) error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	err := f(ctx)
	cancel()
	end := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops[l.phase]++
	s := l.slots[slot]
	if s == nil {
		s = &slotAvail{}
		l.slots[slot] = s
	}
	if err != nil {
		if l.errs[l.phase] == nil {
			l.errs[l.phase] = map[string]int{}
		}
		l.errs[l.phase][errClass(err)]++
		if end.Sub(l.lastReload) > time.Second {
			l.lastReload = end
			l.cc.ReloadState(context.Background()) // lazy: it returns at once
		}
		if s.downSince.IsZero() {
			s.downSince, s.downPhase = start, l.phase
			if l.hit[l.phase] == nil {
				l.hit[l.phase] = map[int]bool{}
			}
			l.hit[l.phase][slot] = true
		}
		return
	}
	if ackKey != "" {
		l.acked[ackKey] = ackValue
	}
	if !s.downSince.IsZero() {
		if d := end.Sub(s.downSince); d > s.worst {
			s.worst, s.worstPhase = d, s.downPhase
		}
		s.downSince = time.Time{}
	}
}

// finish stops the workers (once; later calls do nothing); slots still
// unavailable count until now.
func (l *load) finish() {
	l.once.Do(l.finishOnce)
}

func (l *load) finishOnce() {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, s := range l.slots {
		if !s.downSince.IsZero() {
			if d := now.Sub(s.downSince); d > s.worst {
				s.worst, s.worstPhase = d, s.downPhase+", still down at the end"
			}
		}
	}
}

// lostAcks reads every load key and counts those whose value is older than
// the last acknowledged SET (a SET that failed may still have been applied,
// so a newer value is fine).
func (l *load) lostAcks(ctx context.Context) (lost, unreadable int, first string) {
	l.mu.Lock()
	acked := maps.Clone(l.acked)
	l.mu.Unlock()
	for k, want := range acked {
		var v int64
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			if v, err = l.cc.Get(ctx, k).Int64(); err == nil || err == redis.Nil || time.Now().After(deadline) {
				break
			}
		}
		switch {
		case err == redis.Nil || (err == nil && v < want):
			lost++
			if first == "" {
				first = fmt.Sprintf("%s = %d, acknowledged %d", k, v, want)
			}
		case err != nil:
			unreadable++
		}
	}
	return lost, unreadable, first
}

// report describes the load: commands and errors by phase, and the
// longest unavailability of any slot.
func (l *load) report() (lines []string, worst time.Duration, errors int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.phases {
		var kinds []string
		n := 0
		for _, k := range slices.Sorted(maps.Keys(l.errs[p])) {
			kinds = append(kinds, k+" "+strconv.Itoa(l.errs[p][k]))
			n += l.errs[p][k]
		}
		errors += n
		lines = append(lines, fmt.Sprintf("load during %-10s %6d commands, %4d errors %s", p+":", l.ops[p], n, strings.Join(kinds, ", ")))
	}
	type sw struct {
		slot int
		s    *slotAvail
	}
	var all []sw
	down := 0
	for slot, s := range l.slots {
		all = append(all, sw{slot, s})
		if s.worst > 0 {
			down++
		}
	}
	slices.SortFunc(all, func(a, b sw) int { return int(b.s.worst - a.s.worst) })
	var top []string
	for _, x := range all[:min(5, len(all))] {
		if x.s.worst > 0 {
			top = append(top, fmt.Sprintf("slot %d %v (%s)", x.slot, x.s.worst.Round(10*time.Millisecond), x.s.worstPhase))
		}
	}
	if len(all) > 0 {
		worst = all[0].s.worst
	}
	lines = append(lines, fmt.Sprintf("load: %d of %d slots were unavailable at some point; longest: %s", down, len(all), strings.Join(top, ", ")))
	byPhase := map[string]time.Duration{}
	for _, x := range all {
		p, _, _ := strings.Cut(x.s.worstPhase, ",")
		byPhase[p] = max(byPhase[p], x.s.worst)
	}
	var per []string
	for _, p := range l.phases {
		if d := byPhase[p]; d > 0 || len(l.hit[p]) > 0 {
			per = append(per, fmt.Sprintf("%s %v (%d of %d slots had an outage begin then)", p, d.Round(10*time.Millisecond), len(l.hit[p]), len(l.slots)))
		}
	}
	lines = append(lines, "load: longest unavailability of a slot by the phase it began in: "+strings.Join(per, ", "))
	return lines, worst, errors
}
