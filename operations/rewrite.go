package operations

import (
	"errors"

	"github.com/onlinepg/online/schema"
)

type rewrite struct{}

func (c *Compiler) finishRewrites() error {
	c.attachUniques()
	return nil
}

func (c *Compiler) alterRewrite(t *schema.Table, col *schema.Column, op *AlterColumn, defSet bool, def *string) error {
	return errField("type", "column rewrites are not built yet")
}

func (c *Compiler) addColumnUp(t *schema.Table, mc *schema.Column, col *Column, up string) error {
	return errField("up", "add_column with up is not built yet")
}

func (c *Compiler) dropColumnDown(t *schema.Table, col *schema.Column, down string) error {
	return errField("down", "drop_column with down is not built yet")
}

func asFieldErr(err error, fe **fieldErr) bool { return errors.As(err, fe) }
