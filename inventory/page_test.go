package inventory

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anyops/anyops"
)

// TestCursorRoundTrip proves EncodeCursor and DecodeCursor are inverse for every key the
// store pages on, and that the cursor is URL-safe.
func TestCursorRoundTrip(t *testing.T) {
	for _, key := range []string{"a", "live-file", "vol-0123456789abcdef0", "9223372036854775807", "zone/with spaces+plus", "ünïcode", strings.Repeat("k", maxCursorKey)} {
		c := EncodeCursor(key)
		if strings.ContainsAny(c, "+/=?&") {
			t.Errorf("cursor %q for %q is not URL-safe", c, key)
		}
		got, err := DecodeCursor(c)
		if err != nil || got != key {
			t.Errorf("DecodeCursor(EncodeCursor(%q)) = %q, %v", key, got, err)
		}
	}
	if _, err := DecodeCursor(EncodeCursor(strings.Repeat("k", maxCursorKey+1))); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Errorf("oversized key accepted: %v", err)
	}
}

// FuzzDecodeCursor proves the decoder never panics, rejects anything it did not make with
// EINVALID, and that every cursor it accepts is exactly the encoding of the key it returns
// (so one key has one cursor) and a key PostgreSQL can compare (UTF-8, no NUL).
func FuzzDecodeCursor(f *testing.F) {
	for _, seed := range []string{"", EncodeCursor("live-file"), EncodeCursor("42"), "aGVsbG8", "%%%", "azE6", "azE6AA", "azE6dm9sLTJiNjYwY2QxNGQ2NjE0Yzky"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		key, err := DecodeCursor(cursor)
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("DecodeCursor(%q) error code %q, want EINVALID", cursor, anyops.ErrorCode(err))
			}
			return
		}
		if key == "" || !utf8.ValidString(key) || strings.ContainsRune(key, 0) || len(key) > maxCursorKey {
			t.Fatalf("DecodeCursor(%q) accepted key %q", cursor, key)
		}
		if again := EncodeCursor(key); again != cursor {
			t.Fatalf("DecodeCursor(%q) = %q, which encodes as %q: two cursors for one key", cursor, key, again)
		}
	})
}

// TestSQLiteConnectionSettings proves every SQLite connection enforces foreign keys and uses
// WAL, including when the caller's DSN already carries parameters.
func TestSQLiteConnectionSettings(t *testing.T) {
	ctx := context.Background()
	for _, suffix := range []string{"", "?cache=shared"} {
		t.Run("dsn suffix "+suffix, func(t *testing.T) {
			s, err := Open(ctx, DriverSQLite, t.TempDir()+"/inv.db"+suffix)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var fk int
			var mode string
			if err := s.DB().Raw("PRAGMA foreign_keys").Scan(&fk).Error; err != nil || fk != 1 {
				t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
			}
			if err := s.DB().Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil || mode != "wal" {
				t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
			}
		})
	}
}

// TestOpenRejectsBadConfig proves a bad driver or empty DSN is EINVALID before any connection.
func TestOpenRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	tests := []struct{ name, driver, dsn string }{
		{"unknown driver", "mysql", "x"},
		{"empty sqlite file", DriverSQLite, ""},
		{"empty postgres dsn", DriverPostgres, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(ctx, tt.driver, tt.dsn)
			wantCode(t, err, anyops.EINVALID)
		})
	}
}

// TestInMemorySQLite proves ":memory:" is usable for throw-away stores: the store keeps it
// to one connection, so migrations and later queries see the same database.
func TestInMemorySQLite(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, DriverSQLite, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seeded, err := s.SeedDemoFleet(ctx); err != nil || !seeded {
		t.Fatalf("seed in-memory store: %v, %v", seeded, err)
	}
	if _, err := s.GetServer(ctx, DemoFileServer); err != nil {
		t.Fatal(err)
	}
}
