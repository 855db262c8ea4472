// Package docker holds Sluice's fault tests on real containers: three nodes
// on private docker networks, killed with SIGKILL, restarted with SIGTERM and
// partitioned with docker network disconnect, while a client on the host
// counts keys lost, rate-limit buckets that came back fuller than they were
// left, errors and the longest unavailability per slot.
//
// The tests carry the dockertest build tag, so go test ./... leaves them
// out. Run them with
//
//	make test-cluster
//
// which builds the image (make docker) and runs
// go test -tags dockertest -v ./test/docker. Without a Docker engine they
// fail and say how to install one; they never skip. SLUICE_IMAGE names an
// image already built; when it is unset the tests run make docker first.
//
// The layout: every node is on two networks. The peer network carries gossip
// and the cluster port (each node's --advertise address is its static IP
// there); the client network is where the test, on the host, reaches each
// node's RESP port (its --announce-addr). A partition disconnects a node
// from the peer network only, so the test still talks to both sides of it.
package docker
