package node

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive lock on f without waiting: LockFileEx on one
// byte far past the end of the file, so that the PID written at its start
// stays readable by the daemon that finds the repo in use. Windows
// releases the lock when the process exits however it exits.
func lockFile(f *os.File) error {
	ol := new(windows.Overlapped)
	ol.Offset, ol.OffsetHigh = 0xffffffff, 0x7fffffff
	return windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
}

// freeSpace returns the bytes available to this user on the volume holding
// dir.
func freeSpace(dir string) (int64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, err
	}
	return int64(avail), nil
}
