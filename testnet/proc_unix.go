//go:build unix

package testnet

import "syscall"

// procAttr puts a daemon in its own process group, or in its own session
// when it is to outlive the harness.
func procAttr(detach bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: !detach, Setsid: detach}
}

// signalPID sends sig to a process the harness did not start itself.
func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// Pause freezes the daemon (SIGSTOP): alive to the kernel, silent to its peers.
func (d *Daemon) Pause() error { return d.Signal(syscall.SIGSTOP) }

// Resume lets a paused daemon run again (SIGCONT).
func (d *Daemon) Resume() error { return d.Signal(syscall.SIGCONT) }
