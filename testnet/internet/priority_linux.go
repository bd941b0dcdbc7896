package internet

import (
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// linkNice is the niceness of the process that runs the links' delays
// (the one that called Build) while it holds any. A delay is held and
// released by goroutines of that process; at the niceness of the hosts'
// programs, a machine kept busy by them (a hundred daemons starting on
// two cores) let the releases wait behind the hosts: round trips of 45 ms
// grew to 1.5 s, then the NFQUEUEs overflowed and dropped everything, and
// the daemons took the emulator's stall for their peers' silence. A real
// network's delay does not wait for its hosts' CPU. Every thread of the
// process gets it (a goroutine runs on any of them, and a timer fires on
// whichever holds a P), and programs placed in a node are brought back to
// the niceness the process had before (Prefix). Raising it needs root's
// CAP_SYS_NICE; without it the links share the CPU with the hosts.
const linkNice = -15

// prio counts the delays held by this process, and keeps the niceness it
// had before the first.
var prio struct {
	sync.Mutex
	holders int
	before  int
}

// raisePriority is called for each delay this process starts to hold: the
// first gives every thread of the process linkNice (threads made later
// inherit it).
func raisePriority() {
	prio.Lock()
	defer prio.Unlock()
	if prio.holders == 0 {
		prio.before = niceness()
	}
	prio.holders++
	if prio.before > linkNice {
		setNiceness(linkNice)
	}
}

// lowerPriority is called for each delay released: the last gives every
// thread the niceness it had before, so that what the process does after
// Close (start other programs, run other tests) is not favoured.
func lowerPriority() {
	prio.Lock()
	defer prio.Unlock()
	if prio.holders == 0 {
		return
	}
	prio.holders--
	if prio.holders == 0 {
		setNiceness(prio.before)
	}
}

// childNice is the nice(1) increment that gives a program this process
// starts now the niceness the process had before it held delays.
func childNice() int {
	prio.Lock()
	defer prio.Unlock()
	if prio.holders == 0 {
		return 0
	}
	return max(prio.before-niceness(), 0)
}

// setNiceness gives every thread of this process niceness n, where it
// may (lowering a niceness needs CAP_SYS_NICE).
func setNiceness(n int) {
	for range 2 { // again, for a thread made during the first pass
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				_ = unix.Setpriority(unix.PRIO_PROCESS, tid, n)
			}
		}
	}
}

// niceness is the calling thread's niceness (0 if unknown).
func niceness() int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - p // the raw syscall returns 20 - niceness
}
