package inventory

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
)

// TestPostgresCrashIsUnavailable proves that when the PostgreSQL server crashes (pg_ctl -m
// immediate: the pool's connections break mid-way, then nothing listens) every read and
// write of the store is EUNAVAILABLE — the API's 503 with Retry-After, an activity's retry —
// and never a bare driver error (the first query on a broken pooled connection reads
// "unexpected EOF"; a transaction's BEGIN, a refused connection); and that once the server is back on its data directory the same store
// answers again with the write it accepted before the crash.
func TestPostgresCrashIsUnavailable(t *testing.T) {
	pg := testenv.StartPostgresServer(t)
	ctx := context.Background()
	s, err := Open(ctx, DriverPostgres, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.AddImage(ctx, "debian", "before-crash"); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(version string) error
	}{
		{"read", func(string) error { _, _, err := s.ListZones(ctx, ZoneFilter{}); return err }},
		{"write", func(version string) error { _, err := s.AddImage(ctx, "debian", version); return err }},
		{"transaction", func(version string) error {
			return s.InTx(ctx, func(tx *Store) error { _, err := tx.AddImage(ctx, "debian", version+"-tx"); return err })
		}},
	}
	// Connections in the pool, which the crash breaks.
	for _, c := range calls {
		if err := c.call("before-crash-" + c.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		for _, c := range calls {
			if err := c.call(fmt.Sprintf("refused-%d", i)); anyops.ErrorCode(err) != anyops.EUNAVAILABLE {
				t.Errorf("%s %d with the database crashed: %v (code %q), want %s", c.name, i, err, anyops.ErrorCode(err), anyops.EUNAVAILABLE)
			}
		}
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	var imgs []Image
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if imgs, err = s.ListImages(ctx, "debian"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the store after the restart: %v", err)
	}
	var versions []string
	for _, img := range imgs {
		versions = append(versions, img.Version)
	}
	if want := []string{"before-crash", "before-crash-write", "before-crash-transaction-tx"}; !slices.Equal(versions, want) {
		t.Errorf("images after the restart %v, want %v: those written before the crash and none of those refused", versions, want)
	}
}
