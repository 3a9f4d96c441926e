package operations_test

import (
	"context"

	"github.com/onlinepg/online/internal/lifecycletest"
)

// The end-to-end cases of each operation are in <name>_lifecycle_test.go,
// an external test package: internal/lifecycletest runs them through the
// phases engine, which imports this package.

type env = lifecycletest.Env

func ctx() context.Context { return context.Background() }
