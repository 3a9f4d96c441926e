package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/onlinepg/online/internal/pg"
	"github.com/onlinepg/online/operations"
	"github.com/onlinepg/online/phases"
	"github.com/onlinepg/online/state"
	"github.com/onlinepg/online/workflow"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=$(git rev-parse --short HEAD)" ./cmd/online
//
// Without them, the module version and the VCS revision that the Go
// toolchain records (debug.ReadBuildInfo) stand in.
var (
	version = ""
	commit  = ""
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the migration failed (and was undone) or the server refused
	exitUsage   = 2 // bad flags or a bad migration file: nothing was touched
	exitBusy    = 3 // another online process holds the schema, or another migration is in progress
	exitPending = 4 // complete refused: backfill unfinished; or nothing in progress
	// diff: the migration it wrote does not reach the whole desired schema
	// (or does not run); every difference left is listed.
	exitIncomplete = 5
	// exitDependents: complete or rollback refused, nothing changed:
	// objects online did not create live in or on a version schema they
	// would drop (move them, or --drop-dependents).
	exitDependents = 6
	exitInterupt   = 130
)

type globals struct {
	databaseURL       string
	schema            string
	stateSchema       string
	lockTimeout       time.Duration
	lockRetryDeadline time.Duration
	logFormat         string
	verbose           int
	// dropDependents is --drop-dependents, on the commands that may drop
	// a version schema.
	dropDependents bool
	stdout, stderr io.Writer
	log            zerolog.Logger
	command        string // the command running, for checkTarget
	cfgFlags       configFlags
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// out counts what the command printed on stdout: a command that
	// printed its report before failing (validate, lint, rehearse) has
	// given its one JSON object already.
	out := &countingWriter{w: stdout}
	g := &globals{stdout: out, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	code := report(ctx, g, err)
	if err != nil && cmd != nil && jsonAsked(cmd) && out.n == 0 {
		writeFailureJSON(stdout, cmd, code, err)
	}
	return code
}

type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// jsonAsked reports whether the command ran with --json.
func jsonAsked(cmd *cobra.Command) bool {
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Changed && f.Value.String() == "true"
}

// failureJSON is what a command given --json prints on stdout when it
// fails: one object, as a success prints its result, so that a script
// reads stdout either way. The same text goes to stderr for people.
type failureJSON struct {
	Command  string `json:"command"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	// NothingChanged is set when the command is known to have changed
	// nothing (a refusal before any change, a bad file, a command whose
	// single transaction rolled back); absent when that is not known.
	NothingChanged *bool `json:"nothing_changed,omitempty"`
	// Undone is set by a failed start: whether what it did was undone.
	Undone *bool `json:"undone,omitempty"`
	// LeftInPlace lists what stayed changed although the command failed
	// or was undone (an enum value added, rows a down set back).
	LeftInPlace []string `json:"left_in_place,omitempty"`
	// Dependents are the objects others made that stopped a complete or
	// rollback (exit 6).
	Dependents []phases.ForeignObject `json:"dependents,omitempty"`
	// FailedRow is the key of the row a data migration's down fails on.
	FailedRow string `json:"failed_row,omitempty"`
}

func writeFailureJSON(w io.Writer, cmd *cobra.Command, code int, err error) {
	out := failureJSON{Command: strings.TrimPrefix(cmd.CommandPath(), "online "), ExitCode: code, Error: pg.Explain(err)}
	yes, no := true, false
	var dep *phases.DependentsError
	var down *phases.DownError
	var sf *phases.StartFailedError
	switch {
	case errors.As(err, &dep):
		out.Dependents = dep.Objects
		out.NothingChanged = &yes
	case errors.As(err, &down):
		out.FailedRow = down.Row
		if down.Changed == "" {
			out.NothingChanged = &yes
		} else {
			out.NothingChanged = &no
		}
	case errors.As(err, &sf):
		out.Undone = &sf.Undone
		out.LeftInPlace = sf.Left
		nothing := sf.Undone && len(sf.Left) == 0
		out.NothingChanged = &nothing
	case code == exitUsage, code == exitBusy, errors.Is(err, phases.ErrIrreversible), errors.Is(err, phases.ErrNoMigration), errors.Is(err, phases.ErrBackfillUnfinished):
		out.NothingChanged = &yes
	case strings.Contains(out.Error, "nothing was changed"):
		// complete's and rollback's single transaction rolled back
		// (their messages say so only then; see phases' tests).
		out.NothingChanged = &yes
	}
	_ = writeJSON(w, out)
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "online",
		Short: "Zero-downtime schema changes for PostgreSQL",
		Long: `online changes the schema of a live PostgreSQL database without downtime.

Each migration runs as expand / backfill / contract. While it is in progress,
two schemas of views serve the old and the new shape of every table at once;
an application picks its version with search_path.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.command = cmd.Name()
			if err := g.applyConfig(cmd); err != nil {
				return err
			}
			if err := g.setupLog(); err != nil {
				return err
			}
			// Code below the engine (a connection waiting for a free
			// slot) logs through the context.
			cmd.SetContext(g.log.WithContext(cmd.Context()))
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL; else the PG* variables; else, for commands that only read, "+pg.DefaultURL+")")
	f.StringVar(&g.schema, "schema", envOr("ONLINE_SCHEMA", "public"), "schema whose tables are migrated (env ONLINE_SCHEMA)")
	f.StringVar(&g.stateSchema, "state-schema", envOr("ONLINE_STATE_SCHEMA", "online"), "schema where online keeps its state (env ONLINE_STATE_SCHEMA)")
	f.DurationVar(&g.lockTimeout, "lock-timeout", envDuration("ONLINE_LOCK_TIMEOUT", phases.DefaultLockTimeout), "longest wait for a lock by any DDL statement before it is retried (env ONLINE_LOCK_TIMEOUT)")
	f.DurationVar(&g.lockRetryDeadline, "lock-retry-deadline", envDuration("ONLINE_LOCK_RETRY_DEADLINE", phases.DefaultLockRetryDeadline), "give up retrying one statement's lock, or one backfill batch's, after this long (env ONLINE_LOCK_RETRY_DEADLINE)")
	f.StringVar(&g.logFormat, "log-format", envOr("ONLINE_LOG_FORMAT", ""), "console or json (env ONLINE_LOG_FORMAT; default: console on a terminal, json otherwise)")
	f.CountVarP(&g.verbose, "verbose", "v", "more log output (-v: debug, -vv: trace with every SQL statement)")
	addConfigFlags(root, &g.cfgFlags)

	root.AddCommand(
		newInitCmd(g), newStartCmd(g), newCompleteCmd(g), newRollbackCmd(g), newBackfillCmd(g),
		newStatusCmd(g), newPlanCmd(g), newLatestCmd(g), newDemoCmd(g), newVersionCmd(),
	)
	root.AddCommand(newBenchCmd(g))
	root.AddCommand(newWorkflowCmds(g)...)
	root.AddCommand(newConvertCmd(g))
	root.AddCommand(newLintCmd(g))
	root.AddCommand(newSchemaCmd(g))
	root.AddCommand(newDiffCmd(g))
	root.AddCommand(newRehearseCmd(g))
	root.AddCommand(newGenDocsCmd())
	root.Example = "  online start 02_rename_email.yaml && online complete"
	// Cobra adds these two at Execute; made here so that they get examples.
	// The completion command takes its writer now, so set it first.
	if g.stdout != nil {
		root.SetOut(g.stdout)
		root.SetErr(g.stderr)
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	setExamples(root)
	return root
}

// examples are the Example: sections of each command's --help, by the
// command's path without "online ".
var examples = map[string]string{
	"init":                  "  online init --database-url postgres://app@db/app",
	"start":                 "  online plan 02_rename_email.yaml\n  online start 02_rename_email.yaml\n  DATABASE_URL=postgres://app@db/app online start --backfill-rate 5000 03_lower_email.yaml",
	"backfill":              "  online backfill --backfill-batch-time 50ms",
	"complete":              "  online complete --json",
	"rollback":              "  online rollback\n  online rollback --force   # past an update_rows without down; keeps the values it set",
	"status":                "  online status\n  online status --json | jq .in_progress.phase",
	"plan":                  "  online plan 02_rename_email.yaml\n  online plan --json 02_rename_email.yaml",
	"latest":                "  psql \"postgres://app@db/app?options=-csearch_path%3D$(online latest)\"",
	"demo":                  "  online demo --rows 100000 --duration 10s",
	"bench":                 "  online bench live --scale 10 --clients 4",
	"bench live":            "  online bench live --scale 10 --clients 4 --json",
	"help":                  "  online help start",
	"version":               "  online version\n  online --version",
	"completion bash":       "  online completion bash > /etc/bash_completion.d/online",
	"completion zsh":        "  online completion zsh > \"${fpath[1]}/_online\"",
	"completion fish":       "  online completion fish > ~/.config/fish/completions/online.fish",
	"completion powershell": "  online completion powershell | Out-String | Invoke-Expression",
	"completion":            "  online completion bash > /etc/bash_completion.d/online\n  online completion zsh > \"${fpath[1]}/_online\"\n  online completion fish > ~/.config/fish/completions/online.fish",
	"migrate":               "  online migrate migrations/            # all pending files as one step; the version in use stays live\n  online migrate --complete migrations/\n  online migrate --to 007_nick migrations/\n  online migrate --one-by-one migrations/  # each file completed before the next",
	"history":               "  online history\n  online history --json",
	"create":                "  online create migrations/ add_user_tier",
	"validate":              "  online validate --offline migrations/   # in CI, without a database\n  online validate migrations/ 07_tier.yaml",
	"baseline":              "  online baseline\n  online baseline migrations/ --up-to 004_orders.yaml",
	"pull":                  "  online pull migrations/",
	"revert":                "  online revert && online complete",
	"convert":               "  online convert 0042_add_tier.up.sql -o migrations/042_add_tier.yaml\n  online convert db/migrations/ -o migrations/",
	"lint":                  "  online lint db/migrations/*.sql\n  online lint --json migrations/",
	"schema":                "  online schema > migration.schema.json",
	"diff":                  "  online diff schema.sql -o migrations/008_sync.yaml\n  online diff schema.sql --rename users.mail=email",
	"rehearse":              "  online rehearse migrations/\n  online rehearse --sample 10% --target-url postgres://staging/app 07_tier.yaml",
}

func setExamples(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if ex, ok := examples[strings.TrimPrefix(sub.CommandPath(), "online ")]; ok && sub.Example == "" {
			sub.Example = ex
		}
		setExamples(sub)
	}
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print online's version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), versionJSON{Version: buildVersion()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "online %s\n", buildVersion())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as JSON")
	return cmd
}

// versionJSON is version's --json output.
type versionJSON struct {
	// Version is online's version, with the commit and Go version it was
	// built from as far as known: "v1.2.0 (commit abc1234, go1.26)".
	Version string `json:"version"`
}

// buildVersion is "v1.2.0 (commit abc1234, go1.26)" as far as known.
func buildVersion() string {
	v, c, goVersion := version, commit, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		if c == "" {
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					c = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if len(c) > 12 {
				c = c[:12]
			}
			if c != "" && modified {
				c += "+modified"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	var extra []string
	if c != "" {
		extra = append(extra, "commit "+c)
	}
	if goVersion != "" {
		extra = append(extra, goVersion)
	}
	if len(extra) > 0 {
		v += " (" + strings.Join(extra, ", ") + ")"
	}
	return v
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (g *globals) setupLog() error {
	level := zerolog.InfoLevel
	if g.verbose == 1 {
		level = zerolog.DebugLevel
	} else if g.verbose > 1 {
		level = zerolog.TraceLevel
	}
	format := g.logFormat
	if format == "" {
		format = "json"
		if isTerminal(g.stderr) {
			format = "console"
		}
	}
	switch format {
	case "json":
		g.log = zerolog.New(g.stderr).Level(level).With().Timestamp().Logger()
	case "console":
		g.log = zerolog.New(zerolog.ConsoleWriter{Out: g.stderr, TimeFormat: "15:04:05", NoColor: !isTerminal(g.stderr)}).Level(level).With().Timestamp().Logger()
	default:
		return usageError{fmt.Errorf("--log-format must be console or json, got %q", format)}
	}
	return nil
}

func (g *globals) config() phases.Config {
	return phases.Config{
		URL:               pg.ResolveURL(g.databaseURL),
		Schema:            g.schema,
		StateSchema:       g.stateSchema,
		LockTimeout:       g.lockTimeout,
		LockRetryDeadline: g.lockRetryDeadline,
		Log:               g.log,
		DropDependents:    g.dropDependents,
	}
}

func (g *globals) open(ctx context.Context, cfg phases.Config) (*workflow.Engine, error) {
	if err := g.checkTarget(cfg.URL); err != nil {
		return nil, err
	}
	return workflow.Open(ctx, cfg)
}

func closeEngine(ctx context.Context, e *workflow.Engine) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = e.Close(cctx)
}

// usageError marks bad flags or input: nothing was changed.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// incompleteError ends a command that did its work but must not look
// successful: diff wrote a migration that leaves differences (exit 5), or
// diff --check found the live schema different (exit 1). What differs is
// already printed.
type incompleteError struct {
	error
	code int
}

// report is the one place that renders errors and picks the exit code.
// ctx is the command's: cancelled by a signal, it tells an interruption
// asked for (130) from a connection lost on its own (1).
func report(ctx context.Context, g *globals, err error) int {
	if err == nil {
		return exitOK
	}
	msg := pg.Explain(err)
	code := exitFailure
	var opErr *operations.Error
	var ue usageError
	var inProg *phases.InProgressError
	var intr *phases.InterruptedError
	var inc incompleteError
	switch {
	case errors.As(err, &inc):
		code = inc.code
	case errors.As(err, &opErr), errors.As(err, &ue):
		code = exitUsage
		msg += "\nnothing was changed in the database."
	case errors.Is(err, phases.ErrDependents):
		code = exitDependents
	case errors.Is(err, state.ErrBusy), errors.As(err, &inProg):
		code = exitBusy
	case errors.Is(err, phases.ErrBackfillUnfinished), errors.Is(err, phases.ErrNoMigration), errors.Is(err, phases.ErrIrreversible):
		code = exitPending
	case errors.As(err, &intr) && ctx.Err() == nil && !errors.Is(err, context.Canceled):
		// Nobody asked to stop: the connection was lost or the server
		// ended the session. The checkpoint is saved all the same.
		code = exitFailure
		msg = fmt.Sprintf("lost the connection to the server during migration %q: %s\nprogress saved: run online start with the same file again (or online backfill) to resume, or online rollback to undo it", intr.Migration, pg.Explain(intr.Err))
	case errors.As(err, &intr), errors.Is(err, context.Canceled):
		code = exitInterupt
	}
	if code == exitFailure && isCobraUsage(err) {
		code = exitUsage
	}
	fmt.Fprintf(g.stderr, "online: error: %s\n", msg)
	return code
}

// addDropDependents adds --drop-dependents to a command that may drop a
// version schema (complete, rollback; start, revert and migrate, whose
// failure or completion may too).
func addDropDependents(cmd *cobra.Command, g *globals) {
	cmd.Flags().BoolVar(&g.dropDependents, "drop-dependents", false, "drop the objects online did not create that live in a version schema it drops or use its views (listed in the output); without it such a command changes nothing and lists them (exit 6)")
}

func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "invalid argument", "flag needs an argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
