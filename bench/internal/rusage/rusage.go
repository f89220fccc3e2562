// Package rusage reads the benchmark process's own CPU time, which other
// people's load on a shared machine moves far less than wall time.
package rusage

import (
	"syscall"
	"time"
)

// Self is the CPU time this process has used, user and system (0 if the
// kernel will not say).
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
