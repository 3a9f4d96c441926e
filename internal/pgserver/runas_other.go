//go:build !unix

package pgserver

import (
	"errors"
	"os/exec"
)

// runUser exists only on unix; elsewhere there is no root to step down from
// (os.Geteuid returns -1), so these are never reached with a user.
type runUser struct{ name string }

func unprivilegedUser() (*runUser, error) {
	return nil, errors.New("running as another user is supported only on unix")
}

func setCredential(*exec.Cmd, *runUser)     {}
func chownTo(string, *runUser) error        { return nil }
func checkReachable(string, *runUser) error { return nil }
