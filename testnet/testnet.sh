#!/usr/bin/env bash
# testnet.sh: start, drive and stop a network of real p2pshare daemons on
# this machine ('testnet.sh help' lists the commands: up N, exec I ARGS...,
# kill I, restart I, status, down, demo, internet ARGS...).
#
# The testnet is the Go command testnet/cmd/testnet; this script builds it
# into the run directory ($TESTNET_DIR, default testnet/run) and runs it with
# the same arguments. Go's build cache makes the build quick when no source
# changed, so a checkout with only Go installed needs nothing else.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
run=${TESTNET_DIR:-$root/testnet/run}
[[ $run == /* ]] || run=$PWD/$run
bin=$run/bin/testnet

mkdir -p -- "$run/bin"
if ! (cd -- "$root" && CGO_ENABLED=0 go build -o "$bin" ./testnet/cmd/testnet); then
	echo "testnet: go build of testnet/cmd/testnet failed" >&2
	exit 1
fi
exec -a "$(basename -- "$0")" "$bin" "$@"
