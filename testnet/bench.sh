#!/usr/bin/env bash
# Runs every p2pshare benchmark against real daemons on this machine in one
# go and writes DIR/results.json (every figure, the exact commands, the
# machine and the date), DIR/*.txt (each benchmark's output) and the plots
# DIR/get-throughput.png and DIR/membership-vs-n.png.
#
#   ./testnet/bench.sh [DIR]     # DIR defaults to testnet/bench-results
#
# It takes a while (networks of up to 100 daemons); for a smoke run of a few
# minutes: go run ./testnet/bench all -out DIR -quick
set -euo pipefail

cd "$(dirname "$0")/.."
exec go run ./testnet/bench all -out "${1:-testnet/bench-results}"
