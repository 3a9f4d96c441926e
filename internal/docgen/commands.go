package docgen

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// pageName is the file of a command's page: "start.md", "bench-live.md";
// the root command's page is the directory's README.md, its index.
func pageName(c *cobra.Command) string {
	if !c.HasParent() {
		return "README.md"
	}
	path := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
	return strings.ReplaceAll(path, " ", "-") + ".md"
}

// documented says whether a command gets a page: not the hidden ones, not
// cobra's help command.
func documented(c *cobra.Command) bool {
	return !c.Hidden && c.Name() != "help" && c.Deprecated == ""
}

func commandPages(files Files, root *cobra.Command) error {
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !documented(c) {
			return nil
		}
		files[filepath.Join(commandsDir, pageName(c))] = []byte(commandPage(c))
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if root.HasParent() {
		return fmt.Errorf("docgen: %q is not a root command", root.CommandPath())
	}
	return walk(root)
}

func commandPage(c *cobra.Command) string {
	var b strings.Builder
	b.WriteString(header)
	fmt.Fprintf(&b, "# %s\n\n", c.CommandPath())
	if c.Short != "" {
		fmt.Fprintf(&b, "%s.\n\n", mdText(strings.TrimSuffix(c.Short, ".")))
	}
	if c.Long != "" {
		// Long texts are wrapped for a terminal; a blank line keeps the
		// paragraphs apart, as in Markdown.
		fmt.Fprintf(&b, "%s\n\n", mdText(strings.TrimSpace(c.Long)))
	}
	fmt.Fprintf(&b, "## Usage\n\n```\n%s\n```\n\n", usageLine(c))
	if len(c.Aliases) > 0 {
		fmt.Fprintf(&b, "Also: `%s`.\n\n", strings.Join(c.Aliases, "`, `"))
	}
	if !c.HasParent() {
		b.WriteString("## Commands\n\n| command | what it does |\n|---|---|\n")
		listCommands(&b, c)
		b.WriteString("\n")
	} else if subs := documentedSubs(c); len(subs) > 0 {
		b.WriteString("## Subcommands\n\n| command | what it does |\n|---|---|\n")
		for _, s := range subs {
			fmt.Fprintf(&b, "| [`%s`](%s) | %s |\n", s.CommandPath(), pageName(s), cell(s.Short))
		}
		b.WriteString("\n")
	}
	if fl := c.NonInheritedFlags(); hasVisible(fl) {
		b.WriteString("## Flags\n\n")
		flagTable(&b, fl)
	}
	if fl := c.InheritedFlags(); hasVisible(fl) {
		b.WriteString("## Global flags\n\n")
		flagTable(&b, fl)
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "## Examples\n\n```sh\n%s\n```\n\n", dedent(c.Example))
	}
	b.WriteString("## See also\n\n")
	if c.HasParent() {
		p := c.Parent()
		fmt.Fprintf(&b, "- [`%s`](%s): %s\n", p.CommandPath(), pageName(p), p.Short)
	}
	b.WriteString("- [Exit codes](../exit-codes.md), [environment variables](../environment.md)\n")
	return b.String()
}

// listCommands writes one row per documented command under c, depth first,
// so that the root page lists every page.
func listCommands(b *strings.Builder, c *cobra.Command) {
	for _, s := range documentedSubs(c) {
		fmt.Fprintf(b, "| [`%s`](%s) | %s |\n", s.CommandPath(), pageName(s), cell(s.Short))
		listCommands(b, s)
	}
}

func documentedSubs(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if documented(s) {
			out = append(out, s)
		}
	}
	return out
}

func usageLine(c *cobra.Command) string {
	line := c.UseLine()
	if c.HasAvailableSubCommands() && !c.Runnable() {
		line = c.CommandPath() + " COMMAND"
	} else if c.HasAvailableSubCommands() {
		line += "\n" + c.CommandPath() + " COMMAND"
	}
	return line
}

func hasVisible(fs *pflag.FlagSet) bool {
	visible := false
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			visible = true
		}
	})
	return visible
}

func flagTable(b *strings.Builder, fs *pflag.FlagSet) {
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		name := "--" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", " + name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if varname != "" {
			name += " " + varname
		}
		def := ""
		switch f.DefValue {
		case "", "false", "[]":
		default:
			if !(f.Value.Type() == "count" && f.DefValue == "0") {
				def = "`" + f.DefValue + "`"
			}
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", name, def, cell(usage))
	})
	b.WriteString("\n")
}

// mdText makes a help text safe as Markdown: help texts are written for a
// terminal, where "*.yaml" and "<name>" are literal.
func mdText(s string) string {
	return strings.NewReplacer("*", `\*`, "<", "&lt;").Replace(s)
}

// dedent removes the indentation cobra's help wants from an Example text.
func dedent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "  ")
	}
	return strings.Join(lines, "\n")
}
