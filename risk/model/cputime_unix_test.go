//go:build unix

package model

import (
	"syscall"
	"time"
)

// cpuTime is the process's user plus system CPU time. On a machine shared with other work,
// CPU time per operation is a steadier measure than wall-clock time.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
