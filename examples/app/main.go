// Command app is an example application of online: the code of the
// customers service after examples/02_rename_email.yaml, which renamed
// customers.email to email_address. It is built for that version and uses
// it on every connection, directly or through a pooler in transaction mode:
//
//	go run ./examples/app -database-url postgres://app@db/app
//	go run ./examples/app -pooler -database-url postgres://app@pgbouncer:6432/app
//
// Deployed before `online start 02_rename_email.yaml`, it stops at once and
// says so. Started after it, it keeps working through `online complete`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/onlinepg/online/appversion"
)

// builtFor is the last migration this build ships: the version schema its
// queries are written against. A release sets it with
// -ldflags "-X main.builtFor=02_rename_email".
var builtFor = "02_rename_email"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL or pooler connection string")
	pooler := fs.Bool("pooler", false, "connect through a pooler in transaction mode: SET LOCAL search_path in every transaction")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	n, err := serve(ctx, *url, *pooler, stdout)
	fmt.Fprintf(stdout, "%d orders written\n", n)
	if err != nil {
		fmt.Fprintf(stderr, "app: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, url string, pooler bool, stdout io.Writer) (int, error) {
	v := appversion.Version{Name: builtFor}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return 0, fmt.Errorf("parse the connection string: %w", err)
	}
	cfg.MaxConns = 4
	if pooler {
		// The pooler lends a server connection per transaction: startup
		// parameters would not survive, so each transaction sets its own.
		appversion.ForTransactionPooler(cfg.ConnConfig)
	} else {
		v.ConfigurePool(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	// Fail fast, before serving anything, when the database is not at this
	// build's version yet (or no longer).
	if err := v.Check(ctx, pool); err != nil {
		return 0, err
	}
	inTx := func(fn func(pgx.Tx) error) error {
		if pooler {
			return v.BeginFunc(ctx, pool, fn)
		}
		return pgx.BeginFunc(ctx, pool, fn)
	}
	_ = inTx(func(tx pgx.Tx) error {
		s, err := appversion.InUse(ctx, tx)
		fmt.Fprintf(stdout, "serving version %s (connections resolve names in %s, err %v)\n", v.SchemaName(), s, err)
		return nil
	})
	n := 0
	for ctx.Err() == nil {
		err := inTx(func(tx pgx.Tx) error {
			var id int64
			email := fmt.Sprintf("c%d-%d@example.com", time.Now().UnixNano(), n)
			if err := tx.QueryRow(ctx, "INSERT INTO customers (email_address, name) VALUES ($1, 'example') RETURNING id", email).Scan(&id); err != nil {
				return fmt.Errorf("add a customer: %w", err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO orders (customer_id, total_cents) VALUES ($1, 100)", id); err != nil {
				return fmt.Errorf("add an order: %w", err)
			}
			var got string
			if err := tx.QueryRow(ctx, "SELECT c.email_address FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = $1", id).Scan(&got); err != nil {
				return fmt.Errorf("read the order back: %w", err)
			}
			if got != email {
				return fmt.Errorf("read back %q, wrote %q", got, email)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil { // stopped mid-transaction: not a failure
				break
			}
			return n, err
		}
		n++
	}
	return n, nil
}
