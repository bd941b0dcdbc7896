package internet

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// linkNice is the niceness of the process that runs the links' delays
// (the one that called Build). A delay is held and released by goroutines
// of that process; at the niceness of the hosts' programs, a machine kept
// busy by them (a hundred daemons starting on two cores) let the releases
// wait behind the hosts: round trips of 45 ms grew to 1.5 s, then the
// NFQUEUEs overflowed and dropped everything, and the daemons took the
// emulator's stall for their peers' silence. A real network's delay does
// not wait for its hosts' CPU. Every thread of the process gets it (a
// goroutine runs on any of them, and a timer fires on whichever holds a
// P), and programs placed in a node are brought back to niceness 0
// (Prefix).
const linkNice = -15

// raisePriority gives every thread of this process linkNice, where its
// niceness is higher; threads made later inherit it. Without the right to
// (CAP_SYS_NICE) it does nothing: the links then share the CPU as before.
func raisePriority() {
	for range 2 { // again, for a thread made during the first pass
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if p, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil && 20-p <= linkNice {
				continue // the raw syscall returns 20 - niceness
			}
			_ = unix.Setpriority(unix.PRIO_PROCESS, tid, linkNice)
		}
	}
}

// niceness is the calling thread's niceness (0 if unknown).
func niceness() int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - p
}
