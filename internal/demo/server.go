package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/internal/pgserver"
)

// server is the PostgreSQL server the demo runs on: the user's, or a
// throwaway one started for the demo.
type server struct {
	url       string
	throwaway *pgserver.Server // nil for the user's server
}

// ErrNoServer is wrapped by the error of Run when no server could be
// reached and none could be started.
var ErrNoServer = errors.New("no PostgreSQL server for the demo")

// findServer returns the server at connURL when it takes a connection, and
// otherwise starts a throwaway one, when PostgreSQL's server programs are
// installed. The demo must work on a fresh machine, where the likely
// reason for no server is that none was ever started.
func findServer(ctx context.Context, connURL, binDir string, out io.Writer, log zerolog.Logger) (*server, error) {
	reason := pgserver.Ping(ctx, connURL)
	if reason == nil {
		return &server{url: connURL}, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	fmt.Fprintf(out, "no server answers at %s:\n  %v\n", describe(connURL), reason)
	bins, err := pgserver.FindBinaries(binDir)
	if err != nil {
		return nil, fmt.Errorf("%w: none answers at %s (%v), and none can be started here (%v).\n"+
			"Either point online at a server you can create a database on, with --database-url "+
			"(or DATABASE_URL, or the PG* variables), or install PostgreSQL's server "+
			"(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) "+
			"and online demo starts a throwaway server itself",
			ErrNoServer, describe(connURL), reason, err)
	}
	fmt.Fprintf(out, "starting a throwaway PostgreSQL %d server from %s (removed at the end) ...\n", bins.Version, bins.Dir)
	began := time.Now()
	s, err := pgserver.Start(ctx, bins, log)
	if err != nil {
		return nil, fmt.Errorf("start a throwaway server: %w", err)
	}
	fmt.Fprintf(out, "throwaway server ready in %s\n", time.Since(began).Round(time.Millisecond))
	return &server{url: s.URL, throwaway: s}, nil
}

// close stops a throwaway server and removes its files; the user's server
// is left alone. It runs after Ctrl-C too: pgserver.Stop does not give up
// on a cancelled context.
func (s *server) close(ctx context.Context) error {
	if s == nil || s.throwaway == nil {
		return nil
	}
	return s.throwaway.Stop(ctx)
}

// describe names a server for a person, without its password.
func describe(connURL string) string {
	if connURL != "" {
		return pg.Redact(connURL)
	}
	cfg, err := pg.ParseConfig(connURL, pg.Options{})
	if err != nil {
		return "the server named by the PG* variables"
	}
	return pg.Describe(connURL, cfg) + " (from the PG* variables)"
}
