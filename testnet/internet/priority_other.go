//go:build !linux

package internet

// The links' delays need Linux; elsewhere nothing is run.

func raisePriority() {}

func lowerPriority() {}

func childNice() int { return 0 }
