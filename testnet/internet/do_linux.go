package internet

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread moved into n's namespace, for sockets made in
// this process: a listener or connection fn opens stays in n's namespace
// after Do returns and may be used from any goroutine. fn must not start
// goroutines that open sockets themselves.
func (n *Node) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("internet: %w", err)
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + n.NS)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("internet: namespace of %s: %w", n.Name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("internet: enter %s: %w", n.NS, err)
			return
		}
		err = fn()
		if rerr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); rerr != nil {
			// The thread stays locked, so it ends with this goroutine
			// rather than serve others from the wrong namespace.
			errc <- errors.Join(err, fmt.Errorf("internet: leave %s: %w", n.NS, rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}
