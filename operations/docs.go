package operations

import (
	"reflect"
	"slices"
)

// OperationType returns the Go struct type of the operation a migration file
// names kind, and false for a name the registry does not hold. The reference
// pages of the docs (internal/docgen) walk its yaml tags, as the parser and
// the JSON Schema do, so the three cannot drift.
func OperationType(kind string) (reflect.Type, bool) {
	mk, ok := registry[kind]
	if !ok {
		return nil, false
	}
	return reflect.TypeOf(mk()).Elem(), true
}

// RequiredFields lists the keys a file must give in a struct of the format
// (an operation's or a nested one's, such as Column): the bold fields of the
// format page, the "required" of the JSON Schema.
func RequiredFields(t reflect.Type) []string {
	return slices.Clone(required[t.Name()])
}
