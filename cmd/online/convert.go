package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onlinepg/online/convert"
)

func newConvertCmd(g *globals) *cobra.Command {
	var out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "convert FILE.sql|DIR [-o FILE|DIR]",
		Short: "Turn SQL DDL into migration files that run online",
		Long: `Convert reads SQL DDL (a file, or a directory of golang-migrate, goose or Flyway
migrations) and writes online migration files that do the same without blocking.
Values a person must check (up/down conversions, placeholders) carry a "REVIEW"
comment; statements with no online operation become a sql operation with the
reason. A file that mixes both is split into several migrations, in order.

Without -o, the YAML goes to stdout. With a directory as input, -o names the
output directory (required).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := args[0]
			st, err := os.Stat(in)
			if err != nil {
				return usageError{fmt.Errorf("convert: %w", err)}
			}
			var outs []convert.Output
			if st.IsDir() {
				if out == "" {
					return usageError{fmt.Errorf("convert %s: a directory needs -o DIR for the migration files", in)}
				}
				outs, err = convert.Dir(in)
			} else {
				var src []byte
				if src, err = os.ReadFile(in); err == nil {
					outs, err = convert.File(in, src)
				}
			}
			if err != nil {
				return usageError{fmt.Errorf("convert: %w", err)}
			}
			w := cmd.OutOrStdout()
			report := convertReport{Files: []convertedFile{}}
			if out == "" && asJSON {
				for _, o := range outs {
					report.Files = append(report.Files, convertedFile{Name: o.Name, Raw: o.Raw, Skipped: o.Skipped, YAML: string(o.YAML)})
				}
				return writeJSON(w, report)
			}
			if out == "" {
				for i, o := range outs {
					if len(outs) > 1 {
						if i > 0 {
							fmt.Fprintln(w, "---")
						}
						fmt.Fprintf(w, "# file: %s.yaml\n", o.Name)
					}
					fmt.Fprint(w, string(o.YAML))
				}
				return nil
			}
			paths := outputPaths(out, st.IsDir(), outs)
			for i, o := range outs {
				if err := os.MkdirAll(filepath.Dir(paths[i]), 0o755); err != nil {
					return fmt.Errorf("create directory for %s: %w", paths[i], err)
				}
				if err := os.WriteFile(paths[i], o.YAML, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", paths[i], err)
				}
				report.Files = append(report.Files, convertedFile{Name: o.Name, Path: paths[i], Raw: o.Raw, Skipped: o.Skipped})
				if asJSON {
					continue
				}
				note := ""
				if o.Raw {
					note = fmt.Sprintf(" (sql: %s)", strings.Join(o.Skipped, "; "))
				}
				fmt.Fprintf(w, "wrote %s%s\n", paths[i], note)
			}
			if asJSON {
				return writeJSON(w, report)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (a split file gets _01, _02... after its name), or directory for a directory's migrations")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the files converted as JSON (without -o, their YAML is in it)")
	return cmd
}

// convertReport is convert's --json output.
type convertReport struct {
	Files []convertedFile `json:"files"`
}

// convertedFile is one migration convert wrote.
type convertedFile struct {
	// Name is the migration's name.
	Name string `json:"name"`
	// Path is the file written (with -o).
	Path string `json:"path,omitempty"`
	// Raw is set for a migration of sql operations.
	Raw bool `json:"raw,omitempty"`
	// Skipped says, per statement of a Raw migration, why no online
	// operation does it.
	Skipped []string `json:"skipped,omitempty"`
	// YAML is the file's content, without -o.
	YAML string `json:"yaml,omitempty"`
}

// outputPaths names the files: in a directory for a directory's
// migrations; -o itself for one file; -o's name with the part's suffix
// when a file is split.
func outputPaths(out string, dir bool, outs []convert.Output) []string {
	var paths []string
	for _, o := range outs {
		switch {
		case dir:
			paths = append(paths, filepath.Join(out, o.Name+".yaml"))
		case len(outs) == 1:
			paths = append(paths, out)
		default:
			ext := filepath.Ext(out)
			if ext == "" {
				ext = ".yaml"
			}
			stem := strings.TrimSuffix(out, filepath.Ext(out))
			paths = append(paths, stem+o.Name[strings.LastIndexByte(o.Name, '_'):]+ext)
		}
	}
	return paths
}
