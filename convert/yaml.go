package convert

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// obj is a YAML map that keeps its keys in the order they were set, with an
// optional comment above each key: the review notes of a conversion.
type obj struct {
	keys  []string
	vals  map[string]any // string, bool, *obj, []any, nil (YAML null)
	notes map[string]string
}

func newObj(kv ...any) *obj {
	o := &obj{vals: map[string]any{}, notes: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		o.set(kv[i].(string), kv[i+1])
	}
	return o
}

func (o *obj) set(key string, v any) *obj {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
	return o
}

func (o *obj) has(key string) bool { _, ok := o.vals[key]; return ok }

func (o *obj) get(key string) any { return o.vals[key] }

func (o *obj) str(key string) string { s, _ := o.vals[key].(string); return s }

func (o *obj) del(key string) {
	if !o.has(key) {
		return
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

// note adds a comment line above key.
func (o *obj) note(key, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if prev := o.notes[key]; prev != "" {
		line = prev + "\n" + line
	}
	o.notes[key] = line
}

func (o *obj) node() *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range o.keys {
		kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, HeadComment: o.notes[k]}
		n.Content = append(n.Content, kn, valueNode(o.vals[k]))
	}
	return n
}

func valueNode(v any) *yaml.Node {
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(x)}
	case *obj:
		return x.node()
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, item := range x {
			n.Content = append(n.Content, valueNode(item))
		}
		return n
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, item := range x {
			n.Content = append(n.Content, valueNode(item))
		}
		return n
	}
	panic(fmt.Sprintf("convert: no YAML for %T", v))
}

func render(doc *obj, header string) ([]byte, error) {
	root := doc.node()
	root.HeadComment = header
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	return buf.Bytes(), nil
}
