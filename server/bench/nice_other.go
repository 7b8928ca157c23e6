//go:build !linux

package bench

import "errors"

// lowerPriority is Linux-only (it sets each thread's nice value).
func lowerPriority(int) error {
	return errors.New("-client-nice works on Linux only: pass -client-nice 0")
}
