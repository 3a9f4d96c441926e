package operations

import (
	"errors"
	"fmt"
)

// Error is a problem with a migration file: bad syntax, an unknown field, a
// wrong type, or an operation that does not fit the schema. It names the
// file, the operation's 1-based position and kind, and the field.
type Error struct {
	File  string
	Op    int    // 0 when the problem is not in an operation
	Kind  string // operation name, when known
	Field string // dotted path of the field, when known
	Err   error
}

func (e *Error) Error() string {
	msg := e.File
	if msg == "" {
		msg = "migration"
	}
	if e.Op > 0 {
		if e.Kind != "" {
			msg += fmt.Sprintf(": operation %d (%s)", e.Op, e.Kind)
		} else {
			msg += fmt.Sprintf(": operation %d", e.Op)
		}
	}
	if e.Field != "" {
		msg += fmt.Sprintf(": field %q", e.Field)
	}
	return msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// fieldErr is returned by operations for a problem with one of their fields;
// the compiler adds the file and position.
type fieldErr struct {
	field string
	err   error
}

func (e *fieldErr) Error() string { return fmt.Sprintf("field %q: %v", e.field, e.err) }
func (e *fieldErr) Unwrap() error { return e.err }

// errField says what is wrong with one field of the operation.
func errField(field, format string, args ...any) error {
	return &fieldErr{field: field, err: fmt.Errorf(format, args...)}
}

// wrapField attaches a field to an error such as a *schema.NotFoundError.
func wrapField(field string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fieldErr
	if errors.As(err, &fe) {
		return err
	}
	return &fieldErr{field: field, err: err}
}
