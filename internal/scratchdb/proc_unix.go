//go:build unix

package scratchdb

import (
	"errors"
	"syscall"
)

// processAlive says whether a process of that id runs on this host (a
// process of another user counts: signal 0 is refused, not unanswered).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
