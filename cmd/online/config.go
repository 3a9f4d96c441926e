package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// The config file (online.yaml): what a team would otherwise repeat on
// every command line, per environment. Flags win over environment
// variables, which win over the file's environment section, which wins
// over the file's top level.
//
//	database_url: postgres://app@localhost/app_dev
//	directory: migrations
//	environments:
//	  production:
//	    database_url: ${PRODUCTION_DATABASE_URL}
//	    lock_timeout: 200ms
//
// Values may name environment variables (${VAR}), so that no password is
// written in the file.

// configFile is the default config file, read when it exists.
const configFile = "online.yaml"

type configValues struct {
	DatabaseURL       string `yaml:"database_url"`
	Directory         string `yaml:"directory"`
	Schema            string `yaml:"schema"`
	StateSchema       string `yaml:"state_schema"`
	LockTimeout       string `yaml:"lock_timeout"`
	LockRetryDeadline string `yaml:"lock_retry_deadline"`
}

type config struct {
	configValues `yaml:",inline"`
	Environments map[string]configValues `yaml:"environments"`
}

// configFlags are the flags of the config file itself.
type configFlags struct {
	path, env string
	// directory is the migrations directory of the config file, for the
	// commands that take DIR when none is given.
	directory string
	// urlFrom says where the database URL came from, for checkTarget.
	urlFrom string
}

func addConfigFlags(cmd *cobra.Command, c *configFlags) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.path, "config", os.Getenv("ONLINE_CONFIG"), "config file (env ONLINE_CONFIG; default ./"+configFile+" when it exists); flags and environment variables win over it")
	f.StringVar(&c.env, "env", os.Getenv("ONLINE_ENV"), "the environment of the config file to use (env ONLINE_ENV)")
}

// applyConfig reads the config file, if any, and sets what neither a flag
// nor an environment variable set.
func (g *globals) applyConfig(cmd *cobra.Command) error {
	c := &g.cfgFlags
	path, explicit := c.path, c.path != ""
	if !explicit {
		path = configFile
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		if c.env != "" {
			return usageError{fmt.Errorf("--env %s: no config file (%s) to take it from", c.env, configFile)}
		}
		return nil
	}
	if err != nil {
		return usageError{fmt.Errorf("config file: %w", err)}
	}
	var cf config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil && !errors.Is(err, io.EOF) {
		return usageError{fmt.Errorf("config file %s: %w", path, err)}
	}
	v := cf.configValues
	if c.env != "" {
		e, ok := cf.Environments[c.env]
		if !ok {
			return usageError{fmt.Errorf("config file %s: no environment %q under environments", path, c.env)}
		}
		v = overlay(v, e)
	}
	from := path
	if c.env != "" {
		from += " (environment " + c.env + ")"
	}
	flags := cmd.Flags()
	set := func(flag, envVar, value string, apply func(string) error) error {
		if value == "" || flags.Changed(flag) || (envVar != "" && os.Getenv(envVar) != "") {
			return nil
		}
		if err := apply(os.ExpandEnv(value)); err != nil {
			return usageError{fmt.Errorf("config file %s: %s: %w", from, flag, err)}
		}
		return nil
	}
	duration := func(dst *time.Duration) func(string) error {
		return func(s string) error {
			d, err := time.ParseDuration(s)
			if err == nil {
				*dst = d
			}
			return err
		}
	}
	return errors.Join(
		set("database-url", "DATABASE_URL", v.DatabaseURL, func(s string) error { g.databaseURL, c.urlFrom = s, from; return nil }),
		set("schema", "ONLINE_SCHEMA", v.Schema, func(s string) error { g.schema = s; return nil }),
		set("state-schema", "ONLINE_STATE_SCHEMA", v.StateSchema, func(s string) error { g.stateSchema = s; return nil }),
		set("lock-timeout", "ONLINE_LOCK_TIMEOUT", v.LockTimeout, duration(&g.lockTimeout)),
		set("lock-retry-deadline", "ONLINE_LOCK_RETRY_DEADLINE", v.LockRetryDeadline, duration(&g.lockRetryDeadline)),
		set("", "", v.Directory, func(s string) error { c.directory = s; return nil }),
	)
}

func overlay(base, env configValues) configValues {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	return configValues{
		DatabaseURL: pick(base.DatabaseURL, env.DatabaseURL), Directory: pick(base.Directory, env.Directory),
		Schema: pick(base.Schema, env.Schema), StateSchema: pick(base.StateSchema, env.StateSchema),
		LockTimeout: pick(base.LockTimeout, env.LockTimeout), LockRetryDeadline: pick(base.LockRetryDeadline, env.LockRetryDeadline),
	}
}

// dirArg is the migrations directory of a command that takes DIR: the
// argument, or the config file's directory.
func (g *globals) dirArg(args []string) (string, error) {
	if len(args) > 0 {
		return args[0], nil
	}
	if g.cfgFlags.directory != "" {
		return g.cfgFlags.directory, nil
	}
	return "", usageError{errors.New("give the migrations directory (DIR), or set directory in the config file (" + configFile + ")")}
}
