# Sluice on an empty image: one static binary and a data directory.
#
# No Go image is pulled (these machines cannot pull images): `make docker`
# builds the binary on the host with CGO_ENABLED=0 into bin/docker/ and then
# this file, which only copies it. Build by hand with:
#
#   mkdir -p bin/docker/data
#   CGO_ENABLED=0 GOOS=linux go build -o bin/docker/sluice ./cmd/sluice
#   docker build -t sluice:dev .
FROM scratch

COPY bin/docker/sluice /sluice
# The raft state (--data-dir) of a node that must rejoin as itself after a
# restart; mount a volume here. A new named volume takes this directory's
# owner, so the unprivileged user below can write to it.
COPY --chown=65532:65532 bin/docker/data /data

# Inside a container the node must listen beyond loopback. Protected mode
# still refuses other hosts' clients until --requirepass (or an ACL user
# with a password) is set; give each node the same --cluster-secret too.
ENV SLUICE_BIND=0.0.0.0 \
    SLUICE_DATA_DIR=/data

USER 65532:65532
# RESP, FlatBuffers, gossip (TCP and UDP), cluster (raft, forwarding), admin HTTP.
EXPOSE 6379 6380 7946/tcp 7946/udp 7947 9121
# SIGTERM (docker stop) hands off slots, drains clients and exits 0 within
# about 10 s; give docker stop -t 30 or more.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/sluice"]
