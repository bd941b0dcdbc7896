# p2pshare in an image built FROM scratch: nothing is compiled or pulled
# here. Build the static binary first, into the build context:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o p2pshare ./cmd/p2pshare
#   docker build -t p2pshare .
#
# The daemon keeps its repo (identity, store, API address and token) in
# $P2PSHARE_REPO, /data, which it creates; the API listens on the
# container's loopback, so run the CLI inside the container:
#
#   docker exec NAME /p2pshare members
FROM scratch
COPY p2pshare /p2pshare
ENV P2PSHARE_REPO=/data
EXPOSE 4040/tcp 4040/udp
ENTRYPOINT ["/p2pshare"]
CMD ["daemon", "--no-mdns"]
