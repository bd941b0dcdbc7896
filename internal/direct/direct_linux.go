//go:build linux

package direct

import (
	"os"

	"golang.org/x/sys/unix"
)

// Supported reports whether f is on a local disk file system that writes
// around the page cache well (ext4, XFS, btrfs). Network and FUSE file
// systems are left out: a direct write there can be a round trip.
func Supported(f *os.File) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return false
	}
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC:
		return true
	}
	return false
}

// set turns O_DIRECT on or off for f's later writes; false when the file
// system refuses it.
func set(f *os.File, on bool) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return false
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, fl)
	return err == nil
}

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk now, without waiting.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
