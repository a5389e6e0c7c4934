//go:build unix

package bench

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user and system) this process has used; 0 where it cannot be
// read. On a machine shared with other work, CPU time per operation is a steadier measure than
// wall-clock time.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
