package main

import (
	"time"

	"github.com/fincore/fincore/bench"
)

// cpuTime is the CPU time (user and system) this process has used (0 where it cannot be
// read).
func cpuTime() time.Duration { return bench.ProcessCPU() }
