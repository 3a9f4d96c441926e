// Command online changes the schema of a live PostgreSQL database without
// downtime. It is a thin layer over the phases package: it parses flags,
// wires the engine, renders results and maps errors to exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, the context is cancelled and the engine
		// stops at its next safe point; a second signal exits at once.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
