package inventory

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestClaimReconcileOrdersPictures proves, on each backend, that a reconcile claims a picture
// of the cloud only when it is newer than the newest applied; that the same picture again
// returns what applying it recorded; that an older one returns the newer one; and that a
// claim rolled back with its transaction leaves nothing claimed.
func TestClaimReconcileOrdersPictures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2014, 7, 15, 9, 0, 0, 123456789, time.UTC)
		claim := func(at time.Time, record string, fail error) (bool, Reconcile) {
			t.Helper()
			var claimed bool
			var newest Reconcile
			err := s.InTx(ctx, func(tx *Store) error {
				var err error
				if claimed, newest, err = tx.ClaimReconcile(ctx, "fleet", at); err != nil || !claimed {
					return err
				}
				if err := tx.RecordReconcile(ctx, "fleet", []byte(record)); err != nil {
					return err
				}
				return fail
			})
			if !errors.Is(err, fail) {
				t.Fatalf("claim %v: %v", at, err)
			}
			return claimed, newest
		}
		steps := []struct {
			name        string
			at          time.Time
			fail        error
			wantClaimed bool
			wantNewest  time.Time
			wantResult  string
		}{
			{"the first picture is claimed", t0, nil, true, time.Time{}, ""},
			{"the same picture again returns its result", t0, nil, false, t0, `{"n":1}`},
			{"an older picture returns the newest", t0.Add(-time.Second), nil, false, t0, `{"n":1}`},
			{"a newer picture rolled back claims nothing", t0.Add(time.Minute), errors.New("half-way"), true, time.Time{}, ""},
			{"so it is claimed again", t0.Add(time.Minute), nil, true, time.Time{}, ""},
		}
		for _, st := range steps {
			claimed, newest := claim(st.at, `{"n":1}`, st.fail)
			if claimed != st.wantClaimed || !newest.DescribedAt.Equal(st.wantNewest) || string(newest.Result) != st.wantResult {
				t.Errorf("%s: claimed %v newest %v %q; want %v %v %q", st.name, claimed, newest.DescribedAt, newest.Result,
					st.wantClaimed, st.wantNewest, st.wantResult)
			}
		}
	})
}
