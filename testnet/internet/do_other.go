//go:build !linux

package internet

import "errors"

// Do needs Linux network namespaces; elsewhere it fails.
func (n *Node) Do(fn func() error) error {
	return errors.New("internet: network namespaces need Linux")
}
