package docgen

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// JSONOutput says which commands print a value of type Type with --json.
// The CLI passes the list, since it knows what each command prints.
type JSONOutput struct {
	Commands []string // "start", "status DIR"
	// Type is what the commands encode: a struct, or a slice of one (a
	// list of objects). A type of package main (the CLI's own) is read
	// from cmd/online.
	Type reflect.Type
	// Note, if set, is said under the heading.
	Note string
}

const modulePath = "github.com/onlinepg/online/"

var (
	jsonOutputFile = filepath.Join("docs", "reference", "json-output.md")
	durationType   = reflect.TypeOf(time.Duration(0))
	timeType       = reflect.TypeOf(time.Time{})
	rawJSONType    = reflect.TypeOf(json.RawMessage{})
)

// fieldComments reads the doc comments of a struct's fields from its
// package's source, so the JSON page says what the code says.
type fieldComments struct {
	repo  string
	cache map[string]map[string]map[string]string // package dir -> type -> field -> comment
}

func (fc *fieldComments) of(t reflect.Type, field string) string {
	rel, ok := strings.CutPrefix(t.PkgPath(), modulePath)
	if cliType(t) {
		rel, ok = "cmd/online", true
	}
	if !ok {
		return ""
	}
	if fc.cache == nil {
		fc.cache = map[string]map[string]map[string]string{}
	}
	types, ok := fc.cache[rel]
	if !ok {
		types = map[string]map[string]string{}
		pkgs, err := parser.ParseDir(token.NewFileSet(), filepath.Join(fc.repo, rel), func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments)
		if err == nil {
			for _, p := range pkgs {
				for _, f := range p.Files {
					ast.Inspect(f, func(n ast.Node) bool {
						ts, ok := n.(*ast.TypeSpec)
						if !ok {
							return true
						}
						st, ok := ts.Type.(*ast.StructType)
						if !ok {
							return true
						}
						fields := map[string]string{}
						for _, fl := range st.Fields.List {
							doc := fl.Doc.Text()
							if doc == "" {
								doc = fl.Comment.Text()
							}
							for _, name := range fl.Names {
								fields[name.Name] = strings.Join(strings.Fields(doc), " ")
							}
						}
						types[ts.Name.Name] = fields
						return true
					})
				}
			}
		}
		fc.cache[rel] = types
	}
	return types[t.Name()][field]
}

func jsonFields(fc *fieldComments, t reflect.Type, prefix string, b *strings.Builder) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if name == "" && f.Anonymous && ft.Kind() == reflect.Struct {
			// encoding/json inlines an embedded struct's fields.
			jsonFields(fc, ft, prefix, b)
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		var typ string
		var nested reflect.Type
		switch {
		case ft == durationType:
			typ = "integer (nanoseconds)"
		case ft == timeType:
			typ = "string (RFC 3339 time)"
		case ft == rawJSONType:
			typ = "JSON"
		case ft.Kind() == reflect.Struct:
			typ, nested = "object", ft
		case ft.Kind() == reflect.Slice && (ft.Elem().Kind() == reflect.Struct || ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem().Kind() == reflect.Struct):
			nested = ft.Elem()
			if nested.Kind() == reflect.Pointer {
				nested = nested.Elem()
			}
			typ = "list of objects"
			path += "[]"
		case ft.Kind() == reflect.Slice:
			typ = "list of " + ft.Elem().Kind().String() + "s"
		case ft.Kind() == reflect.String:
			typ = "string"
		case ft.Kind() == reflect.Bool:
			typ = "bool"
		case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Uint64:
			typ = "integer"
		case ft.Kind() == reflect.Float32 || ft.Kind() == reflect.Float64:
			typ = "number"
		default:
			typ = ft.Kind().String()
		}
		note := fc.of(t, f.Name)
		if strings.Contains(opts, "omitempty") {
			typ += ", left out when empty"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", path, cell(typ), cell(note))
		if nested != nil {
			jsonFields(fc, nested, path+".", b)
		}
	}
}

// cliType reports whether t is a type of the CLI's own package: "main" in
// the binary, its import path in its tests.
func cliType(t reflect.Type) bool {
	return t.PkgPath() == "main" || t.PkgPath() == modulePath+"cmd/online"
}

func jsonPage(files Files, root *cobra.Command, repo string, outs []JSONOutput) error {
	fc := &fieldComments{repo: repo}
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("# JSON output\n\n")
	b.WriteString("With `--json`, a command prints one JSON document on stdout when it succeeds, for scripts; logs stay on\n")
	b.WriteString("stderr (`--log-format json` makes them JSON too). The exit code says whether it succeeded: see\n")
	b.WriteString("[exit codes](exit-codes.md). Durations are integers in nanoseconds. The fields below are read from the Go types\n")
	b.WriteString("the commands encode, with their comments from the source.\n\n")
	for _, o := range outs {
		t := o.Type
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		what := "An object"
		if t.Kind() == reflect.Slice {
			what, t = "A list of objects, each", t.Elem()
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
		}
		var names []string
		for _, c := range o.Commands {
			page := strings.ReplaceAll(strings.Fields(c)[0], " ", "-") + ".md"
			names = append(names, fmt.Sprintf("[`online %s --json`](commands/%s)", c, page))
		}
		fmt.Fprintf(&b, "## %s\n\n", strings.Join(names, ", "))
		if o.Note != "" {
			b.WriteString(o.Note + "\n\n")
		}
		if cliType(t) {
			fmt.Fprintf(&b, "%s:\n\n", what)
		} else {
			fmt.Fprintf(&b, "%s (Go type `%s.%s`):\n\n", what, filepath.Base(t.PkgPath()), t.Name())
		}
		b.WriteString("| field | type | meaning |\n|---|---|---|\n")
		jsonFields(fc, t, "", &b)
		b.WriteString("\n")
	}
	// Commands with --json whose output has no section above yet.
	listed := map[string]bool{}
	for _, o := range outs {
		for _, c := range o.Commands {
			listed[strings.Fields(c)[0]] = true
		}
	}
	var rest []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !documented(c) {
			return
		}
		path := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		if c.HasParent() && c.LocalFlags().Lookup("json") != nil && !listed[path] {
			rest = append(rest, fmt.Sprintf("[`online %s --json`](commands/%s)", path, pageName(c)))
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	if len(rest) > 0 {
		b.WriteString("## Other commands\n\n")
		fmt.Fprintf(&b, "Also print JSON, with fields not listed on this page yet: %s.\n", strings.Join(rest, ", "))
	}
	files[jsonOutputFile] = []byte(b.String())
	return nil
}
