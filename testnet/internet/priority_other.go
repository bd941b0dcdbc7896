//go:build !linux

package internet

// raisePriority: the links' delays need Linux; elsewhere nothing is run.
func raisePriority() {}

func niceness() int { return 0 }
