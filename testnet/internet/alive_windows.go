package internet

import "os"

// alive reports whether a process pid exists: on Windows, whether it can
// be opened.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
