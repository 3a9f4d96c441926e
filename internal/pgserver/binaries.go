package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is wrapped by FindBinaries' error when no usable set of server
// binaries exists, so that a caller (or a test) can tell "PostgreSQL is not
// installed here" apart from other failures.
var ErrNotFound = errors.New("PostgreSQL server binaries not found")

// Binaries are the programs needed to run a throwaway server. All three come
// from one directory: initdb, pg_ctl and postgres of different versions do not
// work together (initdb writes a catalog only its own postgres can read).
type Binaries struct {
	Dir      string // the directory holding the three programs
	InitDB   string
	PGCtl    string
	Postgres string
	Version  int // major version, e.g. 15; 0 when it could not be read
}

// distroGlobs are where packaged PostgreSQL keeps server binaries off PATH:
// Debian/Ubuntu put them in /usr/lib/postgresql/N/bin (only client wrappers
// land in /usr/bin), the PGDG RPMs in /usr/pgsql-N/bin.
var distroGlobs = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

// FindBinaries looks for initdb, pg_ctl and postgres. With dir set, only there.
// Otherwise in the directory of initdb found on PATH (with symlinks resolved
// first, since /usr/local/bin often links into a versioned directory), then
// in the distribution directories, newest major version first.
func FindBinaries(dir string) (Binaries, error) {
	if dir != "" {
		b, err := binariesIn(dir)
		if err != nil {
			return Binaries{}, fmt.Errorf("pgserver: %s: %w (%w)", dir, err, ErrNotFound)
		}
		return b, nil
	}

	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		// The resolved directory first: it is where the programs really are
		// installed, and all three there are of one version even when only
		// some were linked onto PATH.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	candidates = append(candidates, distroDirs()...)

	var tried []string
	seen := map[string]bool{}
	for _, d := range candidates {
		if seen[d] {
			continue
		}
		seen[d] = true
		b, err := binariesIn(d)
		if err == nil {
			return b, nil
		}
		tried = append(tried, d)
	}
	where := "PATH"
	if len(tried) > 0 {
		where = "PATH, " + strings.Join(tried, ", ")
	}
	return Binaries{}, fmt.Errorf("pgserver: looked in %s and %s: %w (install the PostgreSQL server package, e.g. postgresql on Debian/Ubuntu)",
		where, strings.Join(distroGlobs, ", "), ErrNotFound)
}

// distroDirs expands distroGlobs, newest major version first.
func distroDirs() []string {
	type cand struct {
		dir string
		ver float64
	}
	var cs []cand
	for _, g := range distroGlobs {
		matches, _ := filepath.Glob(g)
		for _, m := range matches {
			cs = append(cs, cand{m, dirVersion(m)})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].ver > cs[j].ver })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.dir
	}
	return out
}

// dirVersion reads the version out of ".../postgresql/15/bin" or
// ".../pgsql-9.6/bin"; an unreadable one sorts last.
func dirVersion(binDir string) float64 {
	parent := filepath.Base(filepath.Dir(binDir))
	parent = strings.TrimPrefix(parent, "pgsql-")
	v, err := strconv.ParseFloat(parent, 64)
	if err != nil {
		return -1
	}
	return v
}

// binariesIn checks that dir holds all three programs, executable.
func binariesIn(dir string) (Binaries, error) {
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Binaries{}, errors.New("no such directory")
		}
		return Binaries{}, err
	} else if !fi.IsDir() {
		return Binaries{}, errors.New("not a directory")
	}
	b := Binaries{Dir: dir}
	var missing []string
	for _, p := range []struct {
		name string
		dst  *string
	}{{"initdb", &b.InitDB}, {"pg_ctl", &b.PGCtl}, {"postgres", &b.Postgres}} {
		path := filepath.Join(dir, p.name)
		if !isExecutable(path) {
			missing = append(missing, p.name)
			continue
		}
		*p.dst = path
	}
	if len(missing) > 0 {
		return Binaries{}, fmt.Errorf("no executable %s", strings.Join(missing, ", "))
	}
	b.Version = serverVersion(b.Postgres)
	return b, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)`)

// serverVersion asks postgres for its version. "postgres --version" is
// answered before the refuse-to-run-as-root check, so this works as root.
func serverVersion(postgres string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postgres, "--version").Output()
	if err != nil {
		return 0
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.Atoi(string(m[1]))
	return v
}
