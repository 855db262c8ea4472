package test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicedb/sluice/node"
)

// newGoRedis returns a go-redis client of Sluice at addr, closed at the end
// of the test. redis.NewClient speaks RESP3 (HELLO 3) by default.
func newGoRedis(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ok fails the test when a go-redis command failed, and returns the command
// for its value.
func ok[C redis.Cmder](t *testing.T, c C) C {
	t.Helper()
	if err := c.Err(); err != nil {
		t.Fatalf("%v: unexpected error: %v", c.Args(), err)
	}
	return c
}

func TestGoRedisBasics(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{})})

	info := fmt.Sprint(ok(t, c.Do(ctx, "CLIENT", "INFO")).Val())
	if !strings.Contains(info, "resp=3") {
		t.Errorf("go-redis should have negotiated RESP3 with HELLO 3; CLIENT INFO: %q", info)
	}
	if got := ok(t, c.Ping(ctx)).Val(); got != "PONG" {
		t.Errorf("PING = %q", got)
	}
	if got := ok(t, c.Echo(ctx, "hi")).Val(); got != "hi" {
		t.Errorf("ECHO = %q", got)
	}
	if err := c.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing: err = %v, want redis.Nil", err)
	}
	ok(t, c.Set(ctx, "k", "v", 0)).Val()
	if got := ok(t, c.Get(ctx, "k")).Val(); got != "v" {
		t.Errorf("GET k = %q", got)
	}
	if got := ok(t, c.SetNX(ctx, "k", "x", 0)).Val(); got {
		t.Error("SETNX on an existing key reported success")
	}
	if got := ok(t, c.SetXX(ctx, "k", "v2", 0)).Val(); !got {
		t.Error("SET XX on an existing key reported failure")
	}
	if err := c.SetArgs(ctx, "k", "v3", redis.SetArgs{Mode: "NX"}).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("SET NX on an existing key: err = %v, want redis.Nil", err)
	}
	if got := ok(t, c.SetArgs(ctx, "k", "v4", redis.SetArgs{Get: true})).Val(); got != "v2" {
		t.Errorf("SET GET returned %q, want the old value v2", got)
	}
	//lint:ignore SA1019 GETSET is part of the command contract (DESIGN §4)
	if got := ok(t, c.GetSet(ctx, "k", "v5")).Val(); got != "v4" {
		t.Errorf("GETSET = %q", got)
	}
	if got := ok(t, c.Append(ctx, "k", "!")).Val(); got != 3 {
		t.Errorf("APPEND = %d", got)
	}
	if got := ok(t, c.StrLen(ctx, "k")).Val(); got != 3 {
		t.Errorf("STRLEN = %d", got)
	}
	if got := ok(t, c.GetRange(ctx, "k", 0, 1)).Val(); got != "v5" {
		t.Errorf("GETRANGE = %q", got)
	}
	if got := ok(t, c.SetRange(ctx, "k", 1, "XY")).Val(); got != 3 {
		t.Errorf("SETRANGE = %d", got)
	}
	if got := ok(t, c.GetDel(ctx, "k")).Val(); got != "vXY" {
		t.Errorf("GETDEL = %q", got)
	}
	ok(t, c.MSet(ctx, "a", "1", "b", "2")).Val()
	vals := ok(t, c.MGet(ctx, "a", "b", "nope")).Val()
	if len(vals) != 3 || vals[0] != "1" || vals[1] != "2" || vals[2] != nil {
		t.Errorf("MGET = %#v", vals)
	}
	if got := ok(t, c.MSetNX(ctx, "b", "3", "c", "4")).Val(); got {
		t.Error("MSETNX with an existing key reported success")
	}
	if got := ok(t, c.Incr(ctx, "a")).Val(); got != 2 {
		t.Errorf("INCR = %d", got)
	}
	if got := ok(t, c.DecrBy(ctx, "a", 5)).Val(); got != -3 {
		t.Errorf("DECRBY = %d", got)
	}
	if got := ok(t, c.IncrByFloat(ctx, "f", 0.1)).Val(); got != 0.1 {
		t.Errorf("INCRBYFLOAT = %v", got)
	}
	if got := ok(t, c.Exists(ctx, "a", "b", "a", "nope")).Val(); got != 3 {
		t.Errorf("EXISTS = %d", got)
	}
	if got := ok(t, c.Type(ctx, "a")).Val(); got != "string" {
		t.Errorf("TYPE = %q", got)
	}
	ok(t, c.Rename(ctx, "a", "a2")).Val()
	if got := ok(t, c.RenameNX(ctx, "a2", "b")).Val(); got {
		t.Error("RENAMENX onto an existing key reported success")
	}
	if got := ok(t, c.DBSize(ctx)).Val(); got != 3 {
		t.Errorf("DBSIZE = %d, want 3 (a2 b f)", got)
	}
	keys := ok(t, c.Keys(ctx, "*")).Val()
	if len(keys) != 3 {
		t.Errorf("KEYS * = %v", keys)
	}
	if got := ok(t, c.Del(ctx, "a2", "b", "nope")).Val(); got != 2 {
		t.Errorf("DEL = %d", got)
	}
	if got := ok(t, c.Unlink(ctx, "f")).Val(); got != 1 {
		t.Errorf("UNLINK = %d", got)
	}
	if got := ok(t, c.Time(ctx)).Val(); time.Since(got).Abs() > 5*time.Second {
		t.Errorf("TIME = %v, far from now", got)
	}
	if got := ok(t, c.ConfigGet(ctx, "maxmemory")).Val(); got["maxmemory"] == "" {
		t.Errorf("CONFIG GET maxmemory = %v", got)
	}
	if got := ok(t, c.Info(ctx, "server")).Val(); !strings.Contains(got, "redis_version:") {
		t.Errorf("INFO server has no redis_version: %q", got)
	}
	if got := ok(t, c.ClientID(ctx)).Val(); got <= 0 {
		t.Errorf("CLIENT ID = %d", got)
	}
}

func TestGoRedisErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{})})

	ok(t, c.Set(ctx, "s", "abc", 0)).Val()
	checks := []struct {
		name string
		err  error
		want string
	}{
		{"INCR on a string", c.Incr(ctx, "s").Err(), "ERR value is not an integer or out of range"},
		{"INCRBYFLOAT on a string", c.IncrByFloat(ctx, "s", 1).Err(), "ERR value is not a valid float"},
		{"RENAME of a missing key", c.Rename(ctx, "nope", "x").Err(), "ERR no such key"},
		{"unknown command", c.Do(ctx, "NOSUCH", "a").Err(), "ERR unknown command 'NOSUCH', with args beginning with: 'a' "},
		{"wrong arity", c.Do(ctx, "GET").Err(), "ERR wrong number of arguments for 'get' command"},
		{"EXPIRE NX with XX", c.Do(ctx, "EXPIRE", "s", "10", "NX", "XX").Err(),
			"ERR NX and XX, GT or LT options at the same time are not compatible"},
	}
	for _, ck := range checks {
		var rerr redis.Error
		if !errors.As(ck.err, &rerr) || ck.err.Error() != ck.want {
			t.Errorf("%s: err = %v, want redis.Error %q", ck.name, ck.err, ck.want)
		}
	}
	if err := c.GetEx(ctx, "nope", time.Minute).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GETEX of a missing key: err = %v, want redis.Nil", err)
	}
	if err := c.GetDel(ctx, "nope").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GETDEL of a missing key: err = %v, want redis.Nil", err)
	}
	if got := ok(t, c.RandomKey(ctx)).Val(); got != "s" {
		t.Errorf("RANDOMKEY = %q", got)
	}
	ok(t, c.FlushDB(ctx)).Val()
	if err := c.RandomKey(ctx).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("RANDOMKEY of an empty db: err = %v, want redis.Nil", err)
	}
}

func TestGoRedisTTL(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{})})

	within := func(name string, got, want, slack time.Duration) {
		t.Helper()
		if got < want-slack || got > want {
			t.Errorf("%s = %v, want %v (within %v)", name, got, want, slack)
		}
	}
	ok(t, c.Set(ctx, "k", "v", 100*time.Second)).Val()
	within("TTL after SET EX", ok(t, c.TTL(ctx, "k")).Val(), 100*time.Second, time.Second)
	ok(t, c.Set(ctx, "k", "v", 1500*time.Millisecond)).Val()
	within("PTTL after SET PX", ok(t, c.PTTL(ctx, "k")).Val(), 1500*time.Millisecond, 500*time.Millisecond)
	ok(t, c.SetArgs(ctx, "k", "v2", redis.SetArgs{KeepTTL: true})).Val()
	within("PTTL after SET KEEPTTL", ok(t, c.PTTL(ctx, "k")).Val(), 1500*time.Millisecond, 500*time.Millisecond)
	at := time.Unix(4102444800, 0)
	ok(t, c.SetArgs(ctx, "k", "v3", redis.SetArgs{ExpireAt: at})).Val()
	if got := ok(t, c.ExpireTime(ctx, "k")).Val(); got != 4102444800*time.Second {
		t.Errorf("EXPIRETIME after SET EXAT = %v", got)
	}
	if got := ok(t, c.Persist(ctx, "k")).Val(); !got {
		t.Error("PERSIST reported no TTL")
	}
	if got := ok(t, c.TTL(ctx, "k")).Val(); got != -1 {
		t.Errorf("TTL after PERSIST = %v, want -1", got)
	}
	if got := ok(t, c.ExpireXX(ctx, "k", time.Minute)).Val(); got {
		t.Error("EXPIRE XX on a key without TTL reported success")
	}
	if got := ok(t, c.ExpireNX(ctx, "k", time.Minute)).Val(); !got {
		t.Error("EXPIRE NX on a key without TTL reported failure")
	}
	if got := ok(t, c.ExpireGT(ctx, "k", time.Second)).Val(); got {
		t.Error("EXPIRE GT with a shorter TTL reported success")
	}
	if got := ok(t, c.ExpireLT(ctx, "k", 30*time.Second)).Val(); !got {
		t.Error("EXPIRE LT with a shorter TTL reported failure")
	}
	within("TTL after EXPIRE LT", ok(t, c.TTL(ctx, "k")).Val(), 30*time.Second, time.Second)
	if got := ok(t, c.GetEx(ctx, "k", 0)).Val(); got != "v3" {
		t.Errorf("GETEX = %q", got)
	}
	ok(t, c.Do(ctx, "GETEX", "k", "PERSIST"))
	if got := ok(t, c.TTL(ctx, "k")).Val(); got != -1 {
		t.Errorf("TTL after GETEX PERSIST = %v", got)
	}
	if got := ok(t, c.TTL(ctx, "missing")).Val(); got != -2 {
		t.Errorf("TTL of a missing key = %v, want -2", got)
	}
	ok(t, c.Set(ctx, "short", "v", 50*time.Millisecond)).Val()
	deadline := time.Now().Add(5 * time.Second)
	for c.Exists(ctx, "short").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("a key with PX 50 still exists after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Get(ctx, "short").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET of an expired key: err = %v, want redis.Nil", err)
	}
}

func TestGoRedisPipeline(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{})})

	const n = 1000
	pipe := c.Pipeline()
	sets := make([]*redis.StatusCmd, 0, n/4)
	incrs := make([]*redis.IntCmd, 0, n/4)
	gets := make([]*redis.StringCmd, 0, n/4)
	misses := make([]*redis.StringCmd, 0, n/4)
	for i := range n / 4 {
		key := "p:" + strconv.Itoa(i)
		sets = append(sets, pipe.Set(ctx, key, i, 0))
		incrs = append(incrs, pipe.Incr(ctx, key))
		gets = append(gets, pipe.Get(ctx, key))
		misses = append(misses, pipe.Get(ctx, key+":missing"))
	}
	cmds, err := pipe.Exec(ctx)
	if !errors.Is(err, redis.Nil) {
		t.Fatalf("pipeline Exec: err = %v, want redis.Nil (from the misses)", err)
	}
	if len(cmds) != n {
		t.Fatalf("pipeline returned %d results, want %d", len(cmds), n)
	}
	for i := range n / 4 {
		if sets[i].Val() != "OK" || incrs[i].Val() != int64(i+1) || gets[i].Val() != strconv.Itoa(i+1) ||
			!errors.Is(misses[i].Err(), redis.Nil) {
			t.Fatalf("pipeline results for key %d: SET %v, INCR %v, GET %v, GET missing %v",
				i, sets[i], incrs[i], gets[i], misses[i].Err())
		}
	}
}

func TestGoRedisTxPipeline(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{})})

	var incr *redis.IntCmd
	var get *redis.StringCmd
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "tx", "10", 0)
		incr = p.IncrBy(ctx, "tx", 5)
		get = p.Get(ctx, "tx")
		return nil
	})
	if err != nil || len(cmds) != 3 {
		t.Fatalf("TxPipelined: %d results, err %v", len(cmds), err)
	}
	if incr.Val() != 15 || get.Val() != "15" {
		t.Errorf("TxPipelined: INCRBY %v, GET %v", incr, get)
	}

	// A runtime error inside EXEC fails that command only.
	ok(t, c.Set(ctx, "s", "abc", 0)).Val()
	var bad *redis.IntCmd
	var after *redis.StatusCmd
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		bad = p.Incr(ctx, "s")
		after = p.Set(ctx, "after", "1", 0)
		return nil
	})
	if err == nil || bad.Err() == nil || bad.Err().Error() != "ERR value is not an integer or out of range" {
		t.Errorf("INCR of a string inside MULTI: err %v, command err %v", err, bad.Err())
	}
	if after.Val() != "OK" || ok(t, c.Get(ctx, "after")).Val() != "1" {
		t.Errorf("the command after a runtime error did not run: %v", after)
	}

	// A queued command with the wrong arity aborts the transaction.
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "aborted", "1", 0)
		p.Do(ctx, "GET")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Errorf("a queued arity error: err = %v, want EXECABORT", err)
	}
	if n := ok(t, c.Exists(ctx, "aborted")).Val(); n != 0 {
		t.Error("a command of an aborted transaction ran")
	}
}

// TestGoRedisWatchRetry increments one counter from 20 goroutines with
// WATCH/MULTI/EXEC and retries on conflict: the total must be exact.
func TestGoRedisWatchRetry(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{}), PoolSize: 20})

	const workers, perWorker = 20, 25
	increment := func() error {
		for range 1000 {
			err := c.Watch(ctx, func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, "counter").Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, "counter", n+1, 0)
					return nil
				})
				return err
			}, "counter")
			if !errors.Is(err, redis.TxFailedErr) {
				return err
			}
		}
		return errors.New("no success in 1000 optimistic attempts")
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				if err := increment(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	if got, err := c.Get(ctx, "counter").Int(); err != nil || got != workers*perWorker {
		t.Errorf("counter = %d (%v) after %d WATCH/MULTI/EXEC increments", got, err, workers*perWorker)
	}
}

// TestGoRedisScan writes 10,000 keys and checks that the SCAN iterator
// returns every one of them, with and without MATCH and TYPE.
func TestGoRedisScan(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := newGoRedis(t, &redis.Options{Addr: startSluice(t, node.Config{})})

	const n = 10000
	pipe := c.Pipeline()
	for i := range n {
		pipe.Set(ctx, fmt.Sprintf("scan:%05d", i), "v", 0)
	}
	pipe.Set(ctx, "other", "v", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("writing %d keys: %v", n, err)
	}
	collect := func(it *redis.ScanIterator) map[string]int {
		seen := map[string]int{}
		for it.Next(ctx) {
			seen[it.Val()]++
		}
		if err := it.Err(); err != nil {
			t.Fatalf("SCAN iterator: %v", err)
		}
		return seen
	}
	for _, tc := range []struct {
		name string
		it   *redis.ScanIterator
		want int
	}{
		{"SCAN MATCH scan:* COUNT 100", c.Scan(ctx, 0, "scan:*", 100).Iterator(), n},
		{"SCAN COUNT 1000", c.Scan(ctx, 0, "", 1000).Iterator(), n + 1},
		{"SCAN TYPE string", c.ScanType(ctx, 0, "", 500, "string").Iterator(), n + 1},
		{"SCAN MATCH scan:0001?", c.Scan(ctx, 0, "scan:0001?", 50).Iterator(), 10},
	} {
		seen := collect(tc.it)
		if len(seen) != tc.want {
			t.Errorf("%s: %d distinct keys, want %d", tc.name, len(seen), tc.want)
		}
	}
	if got := ok(t, c.DBSize(ctx)).Val(); got != n+1 {
		t.Errorf("DBSIZE = %d, want %d", got, n+1)
	}
}
