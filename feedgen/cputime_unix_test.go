//go:build unix

package feedgen_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used; the benchmarks
// report it per request, a figure that depends less on what else the machine runs
// than latency does.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
