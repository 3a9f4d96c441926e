package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// StartStandby makes a streaming standby of s, for tests of what a primary's
// replication does: pg_basebackup -R copies s into a new temporary directory,
// the lines of conf (postgresql.conf syntax, such as
// "recovery_min_apply_delay = '1s'") are appended to its configuration, and
// it is started on a free port. s must accept replication connections from
// 127.0.0.1, which the trust authentication of Start's initdb does. Stop it
// before s.
func (s *Server) StartStandby(ctx context.Context, conf ...string) (*Server, error) {
	basebackup := filepath.Join(s.bin.Dir, "pg_basebackup")
	if _, err := os.Stat(basebackup); err != nil {
		if basebackup, err = exec.LookPath("pg_basebackup"); err != nil {
			return nil, fmt.Errorf("pgserver: pg_basebackup: %w (%w)", err, ErrNotFound)
		}
	}
	sb := &Server{bin: s.bin, Version: s.Version, log: s.log, as: s.as}
	dir, err := os.MkdirTemp("", "online-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgserver: create temporary directory: %w", err)
	}
	sb.Dir, sb.dataDir, sb.LogFile = dir, filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	if err := sb.startStandby(ctx, s, basebackup, conf); err != nil {
		if stopErr := sb.Stop(context.WithoutCancel(ctx)); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("and cleaning up failed: %w", stopErr))
		}
		return nil, err
	}
	return sb, nil
}

func (s *Server) startStandby(ctx context.Context, primary *Server, basebackup string, conf []string) error {
	if err := chownTo(s.Dir, s.as); err != nil {
		return fmt.Errorf("pgserver: hand %s over: %w", s.Dir, err)
	}
	out, err := s.run(ctx, basebackup, "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", superuser,
		"-D", s.dataDir, "-R", "-X", "stream", "-c", "fast")
	if err != nil {
		return fmt.Errorf("pgserver: pg_basebackup: %w\n%s", err, indent(string(out)))
	}
	// The copy has the primary's settings; later lines win.
	if err := s.writeConfig(); err != nil {
		return fmt.Errorf("pgserver: write configuration: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strings.Join(conf, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		port, err := pickPort()
		if err != nil {
			return fmt.Errorf("pgserver: pick a port: %w", err)
		}
		logStart := fileSize(s.LogFile)
		if err = s.startOn(ctx, port); err == nil {
			s.Port = port
			break
		}
		if attempt < portAttempts && strings.Contains(s.logSince(logStart), "already in use") {
			continue
		}
		return err
	}
	s.URL = (&url.URL{Scheme: "postgres", User: url.User(superuser), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)),
		Path: "/postgres", RawQuery: "sslmode=disable"}).String()
	return s.waitReady(ctx)
}
