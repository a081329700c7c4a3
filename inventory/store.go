package inventory

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/anyops/anyops"
)

// Drivers the store runs on.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Store is the inventory database.
type Store struct {
	db     *gorm.DB
	driver string
}

// now is the clock of every timestamp the store writes: UTC, at the microsecond precision
// PostgreSQL keeps, so that a value read back equals the value written on both drivers.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// normTime brings a caller's time to the same form as now.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

// Open connects to the inventory database and applies pending migrations. driver is "sqlite"
// (dsn is a file path, optionally with query parameters) or "postgres" (dsn is a libpq URL or
// key=value string).
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	s, err := Connect(ctx, driver, dsn)
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// DefaultSQLiteFile is the database file under the data dir when no DSN is given.
const DefaultSQLiteFile = "anyops.db"

// ResolveDSN returns the DSN to open: dsn when given; for sqlite without one, the file
// DefaultSQLiteFile under dataDir, creating dataDir. Every command that opens the inventory
// goes through it so they all find the same file.
func ResolveDSN(driver, dsn, dataDir string) (string, error) {
	if dsn != "" || driver != DriverSQLite {
		return dsn, nil
	}
	if dataDir == "" {
		return "", anyops.Errorf(anyops.EINVALID, "sqlite needs a database file or a data dir")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	return filepath.Join(dataDir, DefaultSQLiteFile), nil
}

// Connect connects to the inventory database without migrating it: for `anyops migrate`,
// which reports what it applies. Everything else uses Open.
func Connect(ctx context.Context, driver, dsn string) (*Store, error) {
	var dialector gorm.Dialector
	switch driver {
	case DriverSQLite:
		if dsn == "" {
			return nil, anyops.Errorf(anyops.EINVALID, "sqlite needs a database file")
		}
		dialector = sqlite.Open(sqliteDSN(dsn))
	case DriverPostgres:
		if dsn == "" {
			return nil, anyops.Errorf(anyops.EINVALID, "postgres needs a DSN")
		}
		dialector = postgres.Open(dsn)
	default:
		return nil, anyops.Errorf(anyops.EINVALID, "database driver %q is not one of [sqlite postgres]", driver)
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		NowFunc:                now,
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true, // every multi-statement write opens its own transaction
	})
	if err != nil {
		return nil, fmt.Errorf("open %s inventory: %w", driver, err)
	}
	s := &Store{db: db, driver: driver}
	if driver == DriverSQLite && strings.Contains(dsn, ":memory:") {
		// Every connection to :memory: is a database of its own; keep to one.
		sqlDB, _ := db.DB()
		sqlDB.SetMaxOpenConns(1)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN adds the connection settings every SQLite connection needs: foreign keys enforced
// (SQLite leaves them off by default), a busy timeout and WAL so that readers and one writer
// share the file, writes that take the lock when their transaction begins (no deadlock when
// two read-then-write transactions meet). Times are written in the driver's default form
// (Go's time.String of a UTC time), which sorts as text because the store writes only UTC.
// (_time_format is not used: go-sqlite v1.21 stops reading parameters after it, which would
// silently drop _txlock.)
func sqliteDSN(dsn string) string {
	params := url.Values{}
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "busy_timeout(10000)")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Set("_txlock", "immediate")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + params.Encode()
}

// DB is the underlying GORM handle, for queries the store does not offer.
func (s *Store) DB() *gorm.DB { return s.db }

// Driver is "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s inventory: %w", s.driver, err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// dbError turns a driver error into the store's vocabulary: a broken unique constraint is
// ECONFLICT, a broken foreign key, CHECK or NOT NULL is EINVALID, a missing row ENOTFOUND.
// Anything else is wrapped with what was being done.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	var appErr *anyops.Error
	if errors.As(err, &appErr) {
		return err
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return anyops.Errorf(anyops.ENOTFOUND, "%s: not found", what)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return anyops.Errorf(anyops.ECONFLICT, "%s: already exists (%s)", what, pgErr.ConstraintName)
		case "23503":
			return anyops.Errorf(anyops.EINVALID, "%s: refers to something that does not exist or is still referred to (%s)", what, pgErr.ConstraintName)
		case "23514", "23502":
			return anyops.Errorf(anyops.EINVALID, "%s: breaks a rule of the schema (%s)", what, pgErr.ConstraintName)
		case "22P02", "22001", "22003", "22021":
			return anyops.Errorf(anyops.EINVALID, "%s: a value is malformed or too large", what)
		case "57P01", "57P02", "57P03": // the server is shutting down, crashed, or still starting
			return unavailable(err, what)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return anyops.Errorf(anyops.ECONFLICT, "%s: already exists (%s)", what, constraintOf(liteErr.Error()))
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return anyops.Errorf(anyops.EINVALID, "%s: refers to something that does not exist or is still referred to", what)
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			return anyops.Errorf(anyops.EINVALID, "%s: breaks a rule of the schema (%s)", what, constraintOf(liteErr.Error()))
		}
	}
	if connectionLost(err) {
		return unavailable(err, what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unavailable is EUNAVAILABLE for a database that cannot be reached now: the client is told
// to retry (the API answers 503 with Retry-After), the log gets the cause.
func unavailable(err error, what string) error {
	return fmt.Errorf("%s: %w: %w", what, anyops.Errorf(anyops.EUNAVAILABLE, "the inventory is unavailable"), err)
}

// connectionLost says whether err is the database being out of reach (stopped, crashed,
// restarting, closed) rather than anything the request did. A connection that broke mid-way
// (a crashed server closes its sockets: the next read on a pooled connection is an unexpected
// EOF) may have carried a commit the server made durable before it went: EUNAVAILABLE tells
// the caller to retry, as for a timeout, and an activity's retry is idempotent by rule.
func connectionLost(err error) bool {
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.As(err, &connect) || errors.As(err, &netErr) ||
		// database/sql's error for a closed *sql.DB is unexported; its text is stable.
		strings.Contains(err.Error(), "sql: database is closed")
}

// isForeignKey reports whether err is a broken foreign key, for deletes that must say
// ECONFLICT ("still referred to") rather than EINVALID.
func isForeignKey(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var liteErr *gosqlite.Error
	return errors.As(err, &liteErr) && liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// isUnique reports whether err is a broken unique or primary key constraint.
func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *gosqlite.Error
	return errors.As(err, &liteErr) &&
		(liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// constraintOf extracts the constraint from SQLite's "... constraint failed: <what> (<code>)".
func constraintOf(msg string) string {
	msg = sqliteCodeSuffix.ReplaceAllString(msg, "")
	if i := strings.LastIndex(msg, "failed: "); i >= 0 {
		return strings.TrimSpace(msg[i+len("failed: "):])
	}
	return "constraint"
}

var sqliteCodeSuffix = regexp.MustCompile(`\s*\(\d+\)$`)

func init() {
	schema.RegisterSerializer("nullzero", nullZeroSerializer{})
}

// nullZeroSerializer stores a field's zero value as NULL and reads NULL back as the zero
// value. It lets optional foreign keys be plain strings and ints in Go.
type nullZeroSerializer struct{}

func (nullZeroSerializer) Scan(ctx context.Context, field *schema.Field, dst reflect.Value, dbValue any) error {
	fv := field.ReflectValueOf(ctx, dst)
	if dbValue == nil {
		fv.Set(reflect.Zero(field.FieldType))
		return nil
	}
	switch v := dbValue.(type) {
	case []byte:
		dbValue = string(v)
	}
	rv := reflect.ValueOf(dbValue)
	// Kinds must match: reflect would convert an int64 to a one-rune string.
	if (rv.Kind() == reflect.String) != (field.FieldType.Kind() == reflect.String) || !rv.Type().ConvertibleTo(field.FieldType) {
		return fmt.Errorf("column %s: cannot read %T into %s", field.DBName, dbValue, field.FieldType)
	}
	fv.Set(rv.Convert(field.FieldType))
	return nil
}

func (nullZeroSerializer) Value(_ context.Context, _ *schema.Field, _ reflect.Value, fieldValue any) (any, error) {
	if fieldValue == nil || reflect.ValueOf(fieldValue).IsZero() {
		return nil, nil
	}
	return fieldValue, nil
}
