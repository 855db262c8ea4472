// Package test holds Sluice's cross-package tests: a differential suite that
// runs the same command sequences against Redis 7 (Debian's redis-server) and
// an in-process Sluice node and compares the replies byte for byte, and
// integration tests that drive Sluice over real sockets with go-redis,
// rueidis, redis-cli and redis-benchmark.
//
// The tests start their own servers on free loopback ports; they need
// redis-server, redis-cli and redis-benchmark on PATH (`make test` installs
// them). Run them with
//
//	go test -race ./test/
//
// and one scenario of the differential suite with
//
//	go test ./test/ -run 'TestDifferential/strings/set-options' -v
package test
