package testnet

import (
	"errors"
	"os"
	"syscall"
)

// procAttr starts a daemon in a new process group, so that a Ctrl-C in the
// harness's console is not delivered to it.
func procAttr(bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// signalPID sends sig to a process the harness did not start itself; on
// Windows only os.Kill is delivered.
func signalPID(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}

var errNoPause = errors.New("pausing a process needs SIGSTOP, which Windows has not")

// Pause would freeze the daemon; Windows has no SIGSTOP.
func (d *Daemon) Pause() error { return errNoPause }

// Resume would let a paused daemon run again.
func (d *Daemon) Resume() error { return errNoPause }
