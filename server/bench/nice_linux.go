//go:build linux

package bench

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets the nice value of every thread of this process to
// n (n > 0 lowers it; no privilege is needed). Linux keeps a nice value
// per thread, and a new thread takes its creator's: two passes catch a
// thread started during the first.
func lowerPriority(n int) error {
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
				return fmt.Errorf("nice %d for thread %d: %w", n, tid, err)
			}
		}
	}
	return nil
}
