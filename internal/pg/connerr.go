package pg

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ConnectError is a failed connection attempt, rendered once with a hint
// for its cause. pgx tries each host, and with sslmode=prefer (its
// default) each host twice, with TLS and without; it then joins the
// attempts' errors, so one refused port used to be printed twice.
type ConnectError struct {
	Target string // user@host:port/database, without the password
	Err    error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to %s: %s", e.Target, dedupe(e.Err.Error()))
}

func (e *ConnectError) Unwrap() error { return e.Err }

// dedupe keeps each distinct line of pgx's joined attempt errors once, and
// drops a line another kept line already says.
func dedupe(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || slices.ContainsFunc(out, func(o string) bool { return strings.Contains(o, l) }) {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, " ")
}

// Hint says what to check for the cause of a failed connection; "" when
// the cause is not one it knows.
func (e *ConnectError) Hint() string {
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	msg := e.Err.Error()
	switch {
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "nothing listens there: is PostgreSQL running, on that host and port? (pg_isready -h HOST -p PORT tells)"
	case errors.As(e.Err, &dnsErr):
		return "the host name does not resolve: check the host in --database-url / DATABASE_URL"
	case errors.As(e.Err, &pgErr) && pgErr.Code == "3D000":
		return "the database does not exist: create it (createdb NAME) or fix its name in --database-url / DATABASE_URL"
	case errors.As(e.Err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		return "authentication failed: check the user and password (in the URL, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf"
	case strings.Contains(msg, "unsupported startup parameter"):
		// Before TLS: with sslmode=prefer the attempt without TLS comes
		// after one pgbouncer refused TLS for, and both lines are here.
		return "a connection pooler (pgbouncer) refused a session setting online sends at connect: online needs a session of its own, so connect to PostgreSQL directly (its own host and port, usually 5432) and keep the pooler for applications"
	case errors.As(e.Err, &certErr), errors.As(e.Err, &hostErr), strings.Contains(msg, "tls:"), strings.Contains(msg, "x509"),
		strings.Contains(msg, "server refused TLS"), strings.Contains(msg, "SSL"):
		return "TLS failed: with sslmode=require or verify-*, the server must offer TLS and, for verify-*, a certificate your sslrootcert trusts; use sslmode=disable only for a server on a trusted network"
	case errors.Is(e.Err, syscall.ETIMEDOUT), strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "context deadline exceeded"):
		return "no answer in time: check the host, the port and any firewall in between"
	}
	return ""
}
