//go:build unix

package pgserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// runUser is the unprivileged account the server runs as when this process
// is root: postgres, initdb and pg_ctl all refuse to run as root.
type runUser struct {
	name     string
	uid, gid uint32
}

// unprivilegedUser picks "postgres" (the packaged server's own account, so
// its files look familiar) or else "nobody", which exists nearly everywhere.
func unprivilegedUser() (*runUser, error) {
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("user %s: non-numeric uid/gid %s/%s", name, u.Uid, u.Gid))
			continue
		}
		return &runUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: no unprivileged user (postgres, nobody) to run it as: %v", errs)
}

// setCredential makes cmd run as u. Groups stays empty so that the child
// drops root's supplementary groups too.
func setCredential(cmd *exec.Cmd, u *runUser) {
	if u == nil {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid}}
}

func chownTo(path string, u *runUser) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.uid), int(u.gid))
}

// checkReachable fails when u cannot search every ancestor of dir: a root
// process with TMPDIR under /root would otherwise see initdb fail with a
// puzzling "permission denied".
func checkReachable(dir string, u *runUser) error {
	if u == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		if ok {
			switch {
			case st.Uid == u.uid && mode&0o100 != 0:
			case st.Uid != u.uid && st.Gid == u.gid && mode&0o010 != 0:
			case st.Uid != u.uid && st.Gid != u.gid && mode&0o001 != 0:
			default:
				return fmt.Errorf("user %s cannot enter %s (mode %v), so it cannot use %s; set TMPDIR to a directory it can reach, such as /tmp", u.name, p, mode, dir)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
