package api

import (
	"os"
	"strings"
)

// Machine names the running system: its host name and, where the kernel
// has one, its boot ID, so two processes can tell that they run on the
// same system (a container has its own host name; a reboot a new boot ID).
func Machine() string {
	host, _ := os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		return host + "/" + strings.TrimSpace(string(b))
	}
	return host
}
