package docgen

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var (
	environmentFile = filepath.Join("docs", "reference", "environment.md")
	// A flag whose default an environment variable sets says so in its
	// usage: "(env ONLINE_SCHEMA)" or "(env DATABASE_URL; else ...)".
	envInUsage = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)`)
)

type envVar struct {
	name, flag, def, usage string
	commands               []string
	global                 bool
}

// environmentPage lists every variable a flag's usage names, with the flag,
// its built-in default and the commands that have it.
func environmentPage(files Files, root *cobra.Command) error {
	vars := map[string]*envVar{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !documented(c) {
			return
		}
		visit := func(global bool) func(f *pflag.Flag) {
			return func(f *pflag.Flag) {
				m := envInUsage.FindStringSubmatch(f.Usage)
				if m == nil || f.Hidden {
					return
				}
				v, ok := vars[m[1]]
				if !ok {
					v = &envVar{name: m[1], flag: "--" + f.Name, def: f.DefValue, usage: f.Usage, global: global}
					vars[m[1]] = v
				}
				if !global && !slices.Contains(v.commands, c.CommandPath()) {
					v.commands = append(v.commands, c.CommandPath())
				}
			}
		}
		if !c.HasParent() {
			c.PersistentFlags().VisitAll(visit(true))
		} else {
			c.LocalNonPersistentFlags().VisitAll(visit(false))
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	var t strings.Builder
	t.WriteString("| variable | flag | built-in default | used by | meaning |\n|---|---|---|---|---|\n")
	for _, name := range sortedKeys(vars) {
		v := vars[name]
		used := "every command"
		if !v.global {
			var links []string
			for _, c := range v.commands {
				page := strings.ReplaceAll(strings.TrimPrefix(c, root.Name()+" "), " ", "-") + ".md"
				links = append(links, fmt.Sprintf("[`%s`](commands/%s)", strings.TrimPrefix(c, root.Name()+" "), page))
			}
			used = strings.Join(links, ", ")
		}
		def := ""
		if v.def != "" {
			def = "`" + v.def + "`"
		}
		usage := strings.TrimSpace(envInUsage.ReplaceAllStringFunc(v.usage, func(string) string { return "(" }))
		usage = strings.ReplaceAll(strings.ReplaceAll(usage, "(; ", "("), " ()", "")
		usage = strings.ReplaceAll(usage, "()", "")
		fmt.Fprintf(&t, "| `%s` | `%s` | %s | %s | %s |\n", v.name, v.flag, def, used, cell(strings.TrimSpace(usage)))
	}
	src, err := text.ReadFile("text/environment.md")
	if err != nil {
		return err
	}
	tmpl, err := template.New("environment").Parse(string(src))
	if err != nil {
		return fmt.Errorf("text/environment.md: %w", err)
	}
	var b strings.Builder
	b.WriteString(header)
	if err := tmpl.Execute(&b, map[string]string{"Variables": t.String()}); err != nil {
		return fmt.Errorf("text/environment.md: %w", err)
	}
	files[environmentFile] = []byte(b.String())
	return nil
}
