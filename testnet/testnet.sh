#!/usr/bin/env bash
# testnet.sh: start, drive and stop a network of real p2pshare daemons on
# this machine, all on 127.0.0.1 with mDNS off.
#
#   testnet.sh up N            build the binary, start N daemons (node 1 first, the
#                              others bootstrap to it) and wait until all answer
#   testnet.sh exec I ARGS...  run 'p2pshare --repo RUN/nodeI ARGS...' (exit code passed on)
#   testnet.sh kill I          kill -9 node I (a crash: its api file is left stale)
#   testnet.sh restart I       stop node I if running, start it again: same repo, same
#                              identity, same listen addresses when they are still free
#   testnet.sh status          one line per node: state, pid, peer ID, API, peers
#   testnet.sh down            stop every node (SIGTERM, then SIGKILL after 10 s)
#   testnet.sh demo            the whole tour: up 5, share on node 2, get on node 5, down
#
# Files, under the run directory RUN ($TESTNET_DIR, default testnet/run in the repo):
#   bin/p2pshare      the binary built by up/demo (or $P2PSHARE_BIN if set)
#   size              the number of nodes of the last 'up'
#   nodeI/            node I's repo (identity, store, api, api.token)
#   nodeI.log         its stdout and stderr (restarts append)
#   nodeI.pid         the pid of its running daemon
#   nodeI.listen      its actual listen multiaddrs (without /p2p/), reused by restart
#   nodeI.addrs       its last known dialable multiaddrs (with /p2p/)
#   nodeI.id          its peer ID
#
# Environment:
#   TESTNET_DIR           run directory (default: testnet/run next to this script's repo)
#   P2PSHARE_BIN          use this prebuilt binary instead of building one
#   TESTNET_DAEMON_ARGS   extra arguments appended to every daemon command line
#   TESTNET_TIMEOUT       seconds to wait for a daemon to be ready (default 15)
#
# Only processes whose pid is in one of our pid files and whose command line
# is a p2pshare daemon on that node's repo are ever signalled.

set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
RUN=${TESTNET_DIR:-$ROOT/testnet/run}
[[ $RUN == /* ]] || RUN=$PWD/$RUN
RUN=${RUN%/}
BIN=${P2PSHARE_BIN:-$RUN/bin/p2pshare}
TIMEOUT=${TESTNET_TIMEOUT:-15}
STOP_TIMEOUT=10
PYTHON=${PYTHON:-python3}
PROG=$(basename -- "$0")

# ---------------------------------------------------------------- helpers

die() {
	echo "testnet: $*" >&2
	exit 1
}

# usage [CODE]: the help text; on stdout with code 0, else on stderr.
usage() {
	local code=${1:-2}
	if ((code == 0)); then usage_text; else usage_text >&2; fi
	exit "$code"
}

usage_text() {
	cat <<EOF
usage: $PROG COMMAND [ARGS...]

  up N              build p2pshare and start N daemons on 127.0.0.1 (node 1 first;
                    the others bootstrap to it); wait until every one answers
  exec I ARGS...    run 'p2pshare --repo RUN/nodeI ARGS...' against node I,
                    e.g. '$PROG exec 2 share notes.txt'
  kill I            kill -9 node I (simulates a crash)
  restart I         stop node I if it runs, start it again with the same repo
                    (same peer ID) and, when free, the same listen addresses
  status            one line per node: state, pid, peer ID, API URL, peers
  down              stop every node of this testnet (safe to repeat)
  demo              the tour: up 5, share a file on node 2, get it on node 5,
                    check the bytes, list and search the catalog, write and
                    read the key-value store, down
  help              this message

run directory: $RUN  (set TESTNET_DIR to change it)
binary: ${P2PSHARE_BIN:-RUN/bin/p2pshare, built by up and demo}  (set P2PSHARE_BIN to use a prebuilt one)
extra daemon flags: \$TESTNET_DAEMON_ARGS; ready timeout: \$TESTNET_TIMEOUT (default 15 s)
EOF
}

repo_of() { echo "$RUN/node$1"; }
log_of() { echo "$RUN/node$1.log"; }
pidfile_of() { echo "$RUN/node$1.pid"; }
listenfile_of() { echo "$RUN/node$1.listen"; }
addrsfile_of() { echo "$RUN/node$1.addrs"; }
idfile_of() { echo "$RUN/node$1.id"; }

# now_ms prints the wall clock in milliseconds (for deadlines).
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# show_path prints a path relative to the repo root when it is inside it.
show_path() {
	case $1 in
	"$ROOT"/*) echo "${1#"$ROOT"/}" ;;
	*) echo "$1" ;;
	esac
}

# log_tail I: the last 20 lines of node I's log, for error messages.
log_tail() {
	local log
	log=$(log_of "$1")
	if [[ -s $log ]]; then
		echo "--- last 20 lines of $log ---" >&2
		tail -n 20 -- "$log" >&2
		echo "---" >&2
	else
		echo "(log $log is empty or missing)" >&2
	fi
}

# node_fail I MESSAGE: report a failure of node I with its log tail, exit 1.
node_fail() {
	local i=$1
	shift
	echo "testnet: node $i: $*" >&2
	echo "testnet: see its log: $(log_of "$i")" >&2
	log_tail "$i"
	if compgen -G "$RUN/node*.pid" >/dev/null; then
		echo "testnet: the nodes started so far are left running; '$PROG down' stops them" >&2
	fi
	exit 1
}

# json EXPR: evaluate the Python expression EXPR on the JSON document read
# from stdin (bound to d) and print the result; lists print one item a line.
json() {
	"$PYTHON" -c '
import json, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
d = json.load(sys.stdin)
r = eval(sys.argv[1])
if isinstance(r, (list, tuple)):
    for x in r:
        print(x)
elif r is not None:
    print(r)
' "$1"
}

# need_python: check for python3 and resolve the interpreter behind any
# shim (pyenv's costs a tenth of a second a call).
need_python() {
	local exe
	[[ -z ${PYTHON_RESOLVED:-} ]] || return 0
	command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON is needed to read the CLI's JSON (set PYTHON to another python3)"
	exe=$("$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null) || die "$PYTHON does not run"
	[[ -x $exe ]] && PYTHON=$exe
	PYTHON_RESOLVED=1
}

need_bin() {
	[[ -x $BIN ]] || die "no binary at $BIN (run '$PROG up N' first, or set P2PSHARE_BIN)"
}

build() {
	if [[ -n ${P2PSHARE_BIN:-} ]]; then
		[[ -x $P2PSHARE_BIN ]] || die "P2PSHARE_BIN=$P2PSHARE_BIN is not an executable file"
		echo "using prebuilt $P2PSHARE_BIN"
		return
	fi
	echo "building $(show_path "$BIN")"
	mkdir -p -- "$RUN/bin"
	(cd -- "$ROOT" && go build -o "$BIN" ./cmd/p2pshare) || die "go build failed"
}

# size: the number of nodes of the testnet in RUN (0 if none).
size() {
	local f=$RUN/size n
	if [[ -r $f ]]; then
		n=$(<"$f")
		if [[ $n =~ ^[0-9]+$ ]]; then
			echo "$n"
			return
		fi
	fi
	echo 0
}

# check_index I: I is a node of the current testnet.
check_index() {
	local i=$1 n
	[[ $i =~ ^[1-9][0-9]*$ ]] || die "node index must be a positive integer, got '$i'"
	n=$(size)
	((n > 0)) || die "no testnet in $RUN (start one with '$PROG up N')"
	((i <= n)) || die "no node $i: the testnet in $RUN has nodes 1..$n"
}

# is_ours PID I: PID is alive and is a p2pshare daemon on node I's repo.
is_ours() {
	local pid=$1 repo args=() k
	repo=$(repo_of "$2")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
	local daemon=0 onrepo=0
	for ((k = 0; k < ${#args[@]}; k++)); do
		case ${args[k]} in
		daemon) daemon=1 ;;
		--repo) [[ ${args[k + 1]:-} == "$repo" ]] && onrepo=1 ;;
		--repo=*) [[ ${args[k]#--repo=} == "$repo" ]] && onrepo=1 ;;
		esac
	done
	((daemon && onrepo))
}

# node_pid I: print the pid of node I's running daemon, or nothing.
node_pid() {
	local f pid
	f=$(pidfile_of "$1")
	[[ -r $f ]] || return 0
	pid=$(<"$f")
	if is_ours "$pid" "$1"; then
		echo "$pid"
	fi
}

# alive PID: the process exists and is not a zombie.
alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $state != Z ]]
}

# wait_gone DEADLINE_MS PID...: wait until none of the pids is alive;
# print the ones still alive at the deadline.
wait_gone() {
	local deadline=$1 pid left
	shift
	while :; do
		left=()
		for pid in "$@"; do
			if alive "$pid"; then left+=("$pid"); fi
		done
		((${#left[@]} == 0)) && return 0
		if (($(now_ms) >= deadline)); then
			echo "${left[@]}"
			return 0
		fi
		sleep 0.1
	done
}

# cli SECONDS ARGS...: run the binary, killed after SECONDS (the CLI's
# client waits on the daemon for as long as it takes; a wedged daemon must
# not hang the script).
cli() {
	local t=$1
	shift
	if command -v timeout >/dev/null 2>&1; then
		timeout "$t" "$BIN" "$@"
	else
		"$BIN" "$@"
	fi
}

# id_json I: node I's 'id --json', or fail.
id_json() {
	cli 5 --repo "$(repo_of "$1")" id --json 2>/dev/null
}

# port_free HOST PORT tcp|udp: nothing else is bound there.
port_free() {
	"$PYTHON" -c '
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                  socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((host, port))
except OSError:
    sys.exit(1)
' "$1" "$2" "$3"
}

# zero_port MULTIADDR: the multiaddr with its TCP or UDP port set to 0.
zero_port() {
	local fam host proto port rest
	IFS=/ read -r _ fam host proto port rest <<<"$1"
	if [[ ($fam == ip4 || $fam == ip6) && ($proto == tcp || $proto == udp) && $port =~ ^[0-9]+$ ]]; then
		echo "/$fam/$host/$proto/0${rest:+/$rest}"
	else
		echo "$1"
	fi
}

# reuse_or_zero MULTIADDR: the multiaddr itself if its port is free, else
# the same with port 0.
reuse_or_zero() {
	local ma=$1 fam host proto port rest
	IFS=/ read -r _ fam host proto port rest <<<"$ma"
	if [[ $ma != "$(zero_port "$ma")" ]] && ! port_free "$host" "$port" "$proto"; then
		echo "testnet: $ma is taken, listening on port 0 instead" >&2
		zero_port "$ma"
	else
		echo "$ma"
	fi
}

# ---------------------------------------------------------------- daemons

DEFAULT_LISTEN=(/ip4/127.0.0.1/tcp/0 /ip4/127.0.0.1/udp/0/quic-v1)

# check_repo_free I: no daemon we do not know of (say, one started by hand)
# holds node I's repo; refuse rather than touch its files.
check_repo_free() {
	local repo
	repo=$(repo_of "$1")
	if command -v flock >/dev/null 2>&1 && [[ -e $repo/repo.lock ]] &&
		! flock -n "$repo/repo.lock" true 2>/dev/null; then
		die "node $1: its repo $repo is held by another daemon (pid $(tr -d '[:space:]' <"$repo/repo.lock")), not started by this script"
	fi
}

# start_daemon I LISTEN_MA... -- BOOTSTRAP_MA...: start node I's daemon in
# the background, detached (own session, SIGHUP ignored), and record its pid.
start_daemon() {
	local i=$1 repo log pidf
	shift
	local listen=() boot=() extra=() args=()
	while (($#)) && [[ $1 != -- ]]; do
		listen+=("$1")
		shift
	done
	(($#)) && shift
	boot=("$@")
	repo=$(repo_of "$i")
	log=$(log_of "$i")
	pidf=$(pidfile_of "$i")
	mkdir -p -- "$repo"
	check_repo_free "$i"
	# A crashed daemon leaves its api files behind; they would point the
	# readiness check at a dead port.
	rm -f -- "$repo/api" "$repo/api.token"
	args=(daemon --repo "$repo" --api 127.0.0.1:0 --no-mdns)
	local ma
	for ma in "${listen[@]}"; do args+=(--listen "$ma"); done
	for ma in "${boot[@]}"; do args+=(--bootstrap "$ma"); done
	read -r -a extra <<<"${TESTNET_DAEMON_ARGS:-}"
	args+=("${extra[@]}")
	{
		echo "=== testnet: $(date '+%F %T') starting node $i:"
		echo "=== $BIN ${args[*]}"
	} >>"$log"
	nohup setsid "$BIN" "${args[@]}" </dev/null >>"$log" 2>&1 8>&- 9>&- &
	echo $! >"$pidf"
}

# wait_ready I DEADLINE_MS: wait until node I's api file exists and
# 'id --json' answers. Returns 0 when ready, 1 when the daemon died (the
# caller decides), and exits with the log tail at the deadline.
wait_ready() {
	local i=$1 deadline=$2 repo pid
	repo=$(repo_of "$i")
	pid=$(<"$(pidfile_of "$i")")
	while :; do
		if [[ -s $repo/api ]] && id_json "$i" >/dev/null; then
			break
		fi
		if ! alive "$pid"; then
			return 1
		fi
		if (($(now_ms) >= deadline)); then
			node_fail "$i" "not ready after ${TIMEOUT} s (no answer to 'id --json' on repo $repo)"
		fi
		sleep 0.1
	done
	# Trust the daemon's own word for its pid (it writes it in repo.lock), in
	# case setsid had to fork.
	local lockpid
	lockpid=$(tr -d '[:space:]' <"$repo/repo.lock" 2>/dev/null || true)
	if [[ -n $lockpid && $lockpid != "$pid" ]] && is_ours "$lockpid" "$i"; then
		echo "$lockpid" >"$(pidfile_of "$i")"
	fi
	record_node "$i"
}

# record_node I: save node I's peer ID, dialable addresses and listen
# addresses (for restart) from its 'id --json'.
record_node() {
	local i=$1 js
	js=$(id_json "$i") || node_fail "$i" "'id --json' failed right after it answered"
	json 'd["id"]' <<<"$js" >"$(idfile_of "$i")"
	json 'd["addrs"]' <<<"$js" >"$(addrsfile_of "$i")"
	json '[a.split("/p2p/")[0] for a in d["addrs"]]' <<<"$js" >"$(listenfile_of "$i")"
}

# start_node I DEADLINE_MS LISTEN_MA... -- BOOTSTRAP_MA...: start node I
# and wait for it. A remembered port can be taken after all (by another
# process since the check): the daemon then exits, or comes up without that
# address, so start it once more with port 0 for what it did not get.
start_node() {
	local i=$1 deadline=$2 logsize listen=() boot=() missing=() retry=() ma
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		listen+=("$1")
		shift
	done
	(($#)) && shift
	boot=("$@")
	logsize=$(stat -c %s -- "$(log_of "$i")" 2>/dev/null || echo 0)
	start_daemon "$i" "${listen[@]}" -- "${boot[@]}"
	if wait_ready "$i" "$deadline"; then
		for ma in "${listen[@]}"; do
			[[ $ma == "$(zero_port "$ma")" ]] && continue
			grep -qxF -- "$ma" "$(listenfile_of "$i")" || missing+=("$ma")
		done
		((${#missing[@]})) || return 0
		echo "testnet: node $i: came up without ${missing[*]} (taken?): restarting it with port 0 there" >&2
		stop_pids TERM "$(node_pid "$i")"
	elif tail -c +"$((logsize + 1))" -- "$(log_of "$i")" | grep -qi 'address already in use'; then
		echo "testnet: node $i: a listen port was taken, retrying on port 0" >&2
		missing=("${listen[@]}")
	else
		rm -f -- "$(pidfile_of "$i")"
		node_fail "$i" "the daemon exited before it was ready"
	fi
	for ma in "${listen[@]}"; do
		if [[ " ${missing[*]} " == *" $ma "* ]]; then
			retry+=("$(zero_port "$ma")")
		else
			retry+=("$ma")
		fi
	done
	start_daemon "$i" "${retry[@]}" -- "${boot[@]}"
	wait_ready "$i" $(($(now_ms) + TIMEOUT * 1000)) && return 0
	rm -f -- "$(pidfile_of "$i")"
	node_fail "$i" "the daemon exited before it was ready"
}

# tcp_addrs: the /tcp/ multiaddrs among the lines on stdin.
tcp_addrs() { grep '/tcp/' || true; }

# stop_pids SIGNAL_FIRST PID...: signal, wait up to STOP_TIMEOUT s, then
# SIGKILL what is left and wait for it to go.
stop_pids() {
	local sig=$1 left
	shift
	(($#)) || return 0
	kill "-$sig" "$@" 2>/dev/null || true
	if [[ $sig != KILL ]]; then
		left=$(wait_gone $(($(now_ms) + STOP_TIMEOUT * 1000)) "$@")
		if [[ -n $left ]]; then
			echo "testnet: pid(s) $left still running after ${STOP_TIMEOUT} s: SIGKILL" >&2
			# shellcheck disable=SC2086 # a list of pids
			kill -KILL $left 2>/dev/null || true
			# shellcheck disable=SC2086
			set -- $left
		else
			return 0
		fi
	fi
	left=$(wait_gone $(($(now_ms) + 5000)) "$@")
	[[ -z $left ]] || echo "testnet: pid(s) $left did not go away after SIGKILL" >&2
}

# ---------------------------------------------------------------- commands

cmd_up() {
	(($# == 1)) || usage
	local n=$1 i f pid deadline boot
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "up N: N must be a positive integer, got '$n'"
	need_python
	mkdir -p -- "$RUN" || die "cannot create run directory $RUN"
	for f in "$RUN"/node*.pid; do
		[[ -e $f ]] || continue
		i=${f##*/node}
		i=${i%.pid}
		pid=$(node_pid "$i")
		[[ -z $pid ]] || die "node $i of a testnet is still running in $RUN (pid $pid); run '$PROG down' first"
	done
	build
	# A fresh network: forget the nodes of an earlier run.
	rm -rf -- "$RUN"/node[0-9]* "$RUN/size"
	echo "$n" >"$RUN/size"

	echo "starting node 1"
	: >"$(log_of 1)"
	start_node 1 $(($(now_ms) + TIMEOUT * 1000)) "${DEFAULT_LISTEN[@]}" --
	boot=$(tcp_addrs <"$(addrsfile_of 1)" | head -n 1)
	[[ -n $boot ]] || node_fail 1 "'id --json' lists no /tcp/ address to bootstrap to"

	if ((n > 1)); then
		echo "starting nodes 2..$n (bootstrap $boot)"
		for ((i = 2; i <= n; i++)); do
			: >"$(log_of "$i")"
			start_daemon "$i" "${DEFAULT_LISTEN[@]}" -- "$boot"
		done
		deadline=$(($(now_ms) + TIMEOUT * 1000))
		for ((i = 2; i <= n; i++)); do
			wait_ready "$i" "$deadline" || {
				rm -f -- "$(pidfile_of "$i")"
				node_fail "$i" "the daemon exited before it was ready"
			}
		done
	fi
	echo "testnet of $n nodes up in $(show_path "$RUN")"
	cmd_status
}

cmd_exec() {
	(($# >= 1)) || usage
	local i=$1
	shift
	check_index "$i"
	need_bin
	exec "$BIN" --repo "$(repo_of "$i")" "$@"
}

cmd_kill() {
	(($# == 1)) || usage
	local i=$1 pid
	check_index "$i"
	pid=$(node_pid "$i")
	if [[ -z $pid ]]; then
		rm -f -- "$(pidfile_of "$i")"
		echo "node $i is not running"
		return 0
	fi
	stop_pids KILL "$pid"
	rm -f -- "$(pidfile_of "$i")"
	echo "killed node $i (pid $pid, SIGKILL)"
}

cmd_restart() {
	(($# == 1)) || usage
	local i=$1 j pid boot=() listen=() ma old_id new_id
	check_index "$i"
	need_python
	need_bin
	pid=$(node_pid "$i")
	if [[ -n $pid ]]; then
		echo "stopping node $i (pid $pid, SIGTERM)"
		stop_pids TERM "$pid"
	fi
	rm -f -- "$(pidfile_of "$i")"
	check_repo_free "$i"

	# Bootstrap to every other running node; else to node 1's last address.
	for ((j = 1; j <= $(size); j++)); do
		((j == i)) && continue
		[[ -n $(node_pid "$j") ]] || continue
		local js
		js=$(id_json "$j") || continue
		while IFS= read -r ma; do
			[[ -n $ma ]] && boot+=("$ma")
		done < <(json 'd["addrs"]' <<<"$js" | tcp_addrs)
	done
	if ((${#boot[@]} == 0 && i != 1)) && [[ -s $(addrsfile_of 1) ]]; then
		echo "no other node is running: bootstrapping to node 1's last known address"
		while IFS= read -r ma; do
			[[ -n $ma ]] && boot+=("$ma")
		done < <(tcp_addrs <"$(addrsfile_of 1)")
	fi

	# The same listen addresses as before, where still free.
	if [[ -s $(listenfile_of "$i") ]]; then
		while IFS= read -r ma; do
			[[ -n $ma ]] && listen+=("$(reuse_or_zero "$ma")")
		done <"$(listenfile_of "$i")"
	fi
	# Both transports, whatever the file says.
	[[ " ${listen[*]} " == *"/tcp/"* ]] || listen+=("${DEFAULT_LISTEN[0]}")
	[[ " ${listen[*]} " == *"/quic-v1"* ]] || listen+=("${DEFAULT_LISTEN[1]}")

	old_id=$(cat -- "$(idfile_of "$i")" 2>/dev/null || true)
	echo "starting node $i on ${listen[*]}${boot[*]:+ (bootstrap ${boot[*]})}"
	start_node "$i" $(($(now_ms) + TIMEOUT * 1000)) "${listen[@]}" -- "${boot[@]}"
	new_id=$(<"$(idfile_of "$i")")
	if [[ -n $old_id && $old_id != "$new_id" ]]; then
		echo "testnet: warning: node $i came back as $new_id, was $old_id" >&2
	fi
	echo "node $i is back: pid $(node_pid "$i"), peer $new_id"
	echo "  listening on $(paste -sd ' ' -- "$(listenfile_of "$i")")"
}

# Status columns: to add one, append "HEADER:WIDTH:function" to
# STATUS_COLUMNS and write the function. Each function prints one field for
# node S_I; it may use S_PID (empty when stopped), S_ID_JSON (the node's
# 'id --json', empty when stopped or not answering), and S_PEER and S_API
# taken from it.
STATUS_COLUMNS=(
	"NODE:4:col_node"
	"STATE:8:col_state"
	"PID:8:col_pid"
	"PEER ID:52:col_peer"
	"API:22:col_api"
	"PEERS:5:col_peers"
	"VIEW:0:col_view"
)

col_node() { echo "$S_I"; }
col_state() {
	if [[ -z $S_PID ]]; then
		echo stopped
	elif [[ -z $S_ID_JSON ]]; then
		echo starting
	else
		echo running
	fi
}
col_pid() { echo "${S_PID:--}"; }
col_peer() {
	if [[ -n $S_PEER ]]; then
		echo "$S_PEER"
	else
		# The last known peer ID of a stopped node.
		cat -- "$(idfile_of "$S_I")" 2>/dev/null || echo -
	fi
}
col_api() { echo "${S_API:--}"; }
col_peers() {
	local js
	if [[ -n $S_ID_JSON ]] && js=$(cli 5 --repo "$(repo_of "$S_I")" peers --json 2>/dev/null); then
		json 'len(d or [])' <<<"$js"
	else
		echo -
	fi
}

# col_view: this node's members table as one letter per testnet node, in
# node order; '*' is the node itself.
col_view() {
	local js ids=() j
	[[ -n $S_ID_JSON ]] || {
		echo -
		return
	}
	js=$(cli 5 --repo "$(repo_of "$S_I")" members --json 2>/dev/null) || {
		echo -
		return
	}
	for ((j = 1; j <= $(size); j++)); do
		ids+=("$(cat -- "$(idfile_of "$j")" 2>/dev/null || echo none)")
	done
	IDS="${ids[*]}" SELF=$S_I json '"".join("*" if i + 1 == int(__import__("os").environ["SELF"]) else {"alive": "A", "suspect": "S", "dead": "D", "left": "L"}.get({m["id"]: m["state"] for m in d}.get(pid), "?") for i, pid in enumerate(__import__("os").environ["IDS"].split()))' <<<"$js"
}

status_line() {
	local spec header width fn line="" val
	for spec in "${STATUS_COLUMNS[@]}"; do
		IFS=: read -r header width fn <<<"$spec"
		if [[ ${1:-} == header ]]; then val=$header; else val=$("$fn"); fi
		line+=$(printf '%-*s  ' "$width" "$val")
	done
	echo "${line%"${line##*[! ]}"}"
}

cmd_status() {
	(($# == 0)) || usage
	local n
	n=$(size)
	((n > 0)) || {
		echo "no testnet in $RUN (start one with '$PROG up N')"
		return 0
	}
	need_python
	need_bin
	status_line header
	for ((S_I = 1; S_I <= n; S_I++)); do
		S_PID=$(node_pid "$S_I")
		S_ID_JSON="" S_PEER="" S_API=""
		if [[ -n $S_PID ]] && S_ID_JSON=$(id_json "$S_I"); then
			{
				read -r S_PEER
				read -r S_API
			} < <(json '[d["id"], d["api"]]' <<<"$S_ID_JSON")
		else
			S_ID_JSON=""
		fi
		status_line
	done
	echo "VIEW: how each node sees nodes 1..$n (A alive, S suspect, D dead, L left, ? unknown, * itself)"
}

cmd_down() {
	(($# == 0)) || usage
	local f i pid pids=() names=()
	for f in "$RUN"/node*.pid; do
		[[ -e $f ]] || continue
		i=${f##*/node}
		i=${i%.pid}
		pid=$(node_pid "$i")
		if [[ -n $pid ]]; then
			pids+=("$pid")
			names+=("node $i (pid $pid)")
		fi
	done
	if ((${#pids[@]} == 0)); then
		echo "no testnet node running in $(show_path "$RUN")"
	else
		local list
		printf -v list '%s, ' "${names[@]}"
		echo "stopping ${#pids[@]} node(s): ${list%, }"
		stop_pids TERM "${pids[@]}"
	fi
	rm -f -- "$RUN"/node*.pid
}

# ---------------------------------------------------------------- demo

# step DESCRIPTION: a heading of the tour.
step() { printf '\n== %s\n' "$*"; }

# show_cmd I ARGS...: echo the command a user would type for node I.
show_cmd() {
	local i=$1
	shift
	echo "\$ p2pshare --repo $(show_path "$(repo_of "$i")") $*"
}

# node_index PEER_ID: the index of the node with that peer ID, or "?".
node_index() {
	local i
	for ((i = 1; i <= $(size); i++)); do
		if [[ $(cat -- "$(idfile_of "$i")" 2>/dev/null) == "$1" ]]; then
			echo "$i"
			return
		fi
	done
	echo "?"
}

demo_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	exec 1>&8 2>&9
	step "tear down"
	cmd_down || true
	if ((rc == 0)); then
		echo
		echo "demo done."
	else
		echo "demo FAILED (exit $rc); node logs are in $(show_path "$RUN")" >&2
	fi
	exit "$rc"
}

cmd_demo() {
	(($# == 0)) || usage
	need_python
	# The tear-down may run while a redirection is in effect (a signal
	# lands during 'cmd >/dev/null'): keep the real stdout and stderr.
	exec 8>&1 9>&2
	trap demo_cleanup EXIT
	trap 'exit 130' INT TERM
	local start=$SECONDS dir file out js name cid provider idx

	step "clear any earlier testnet in $(show_path "$RUN")"
	cmd_down

	step "start 5 daemons on 127.0.0.1 (node 1 first, the others bootstrap to it)"
	echo "\$ $PROG up 5"
	cmd_up 5

	dir=$RUN/demo
	mkdir -p -- "$dir"
	file=$dir/notes.txt
	out=$dir/notes-from-the-network.txt
	rm -f -- "$out"
	cat >"$file" <<'EOF'
p2pshare demo notes
- every node is a real daemon process with its own repo and peer ID
- node 2 shares this file; node 5 fetches it by name
- the bytes come straight from a peer that holds them, checked against the CID
EOF
	step "node 2 shares a file"
	echo "(the file: $(show_path "$file"), $(wc -l <"$file") lines)"
	show_cmd 2 share "$(show_path "$file")" --json
	js=$(cli 30 --repo "$(repo_of 2)" share "$file" --json)
	echo "$js"
	name=$(json 'd["name"]' <<<"$js")
	cid=$(json 'd["cid"]' <<<"$js")
	echo "-> shared as name '$name', CID $cid"

	step "node 5 gets it by name"
	show_cmd 5 get "$name" -o "$(show_path "$out")" --json
	js=$(cli 30 --repo "$(repo_of 5)" get "$name" -o "$out" --json)
	echo "$js"
	provider=$(json 'd["provider"]' <<<"$js")
	idx=$(node_index "$provider")
	echo "-> got CID $(json 'd["cid"]' <<<"$js")"
	echo "-> served by peer $provider (node $idx)"
	[[ $(json 'd["cid"]' <<<"$js") == "$cid" ]] || die "the CID node 5 got differs from the one node 2 shared"

	step "compare the bytes"
	echo "\$ cmp $(show_path "$file") $(show_path "$out")"
	if cmp -- "$file" "$out"; then
		echo "bytes match"
	else
		die "bytes differ"
	fi

	step "every node lists the catalog; node 3 searches it"
	show_cmd 4 ls
	cli 30 --repo "$(repo_of 4)" ls
	show_cmd 3 search NOTES --json
	js=$(cli 30 --repo "$(repo_of 3)" search NOTES --json)
	echo "$js"
	[[ $(json 'len(d)' <<<"$js") == 1 && $(json 'd[0]["cid"]' <<<"$js") == "$cid" ]] ||
		die "search on node 3 did not find '$name'"

	step "node 1 writes the key-value store; node 5 reads it"
	show_cmd 1 kv put motd "\"welcome to the demo network\"" --ttl 1h
	cli 30 --repo "$(repo_of 1)" kv put motd "welcome to the demo network" --ttl 1h
	local tries=0
	until js=$(cli 30 --repo "$(repo_of 5)" kv get motd --json 2>/dev/null); do
		((++tries < 100)) || die "node 5 never saw the key node 1 wrote"
		sleep 0.05
	done
	show_cmd 5 kv get motd
	cli 30 --repo "$(repo_of 5)" kv get motd
	[[ $(json 'd["writer"]' <<<"$js") == "$(json 'd["id"]' <<<"$(cli 30 --repo "$(repo_of 1)" id --json)")" ]] ||
		die "node 5 names the wrong writer"

	step "the network"
	echo "\$ $PROG status"
	cmd_status
	echo
	echo "(tour took $((SECONDS - start)) s; to drive a network by hand:"
	echo "   $PROG up 4; $PROG exec 3 share FILE; $PROG exec 1 get NAME;"
	echo "   $PROG kill 2; $PROG restart 2; $PROG status; $PROG down)"
}

# ---------------------------------------------------------------- main

main() {
	(($# >= 1)) || usage
	local cmd=$1
	shift
	case $cmd in
	up) cmd_up "$@" ;;
	exec) cmd_exec "$@" ;;
	kill) cmd_kill "$@" ;;
	restart) cmd_restart "$@" ;;
	status) cmd_status "$@" ;;
	down) cmd_down "$@" ;;
	demo) cmd_demo "$@" ;;
	help | -h | --help) usage 0 ;;
	*)
		echo "testnet: unknown command '$cmd'" >&2
		usage
		;;
	esac
}

main "$@"
