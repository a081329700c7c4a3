package inventory

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestPatchRolloutReport proves the report's life on both backends: the plan is recorded
// once per run (a retried start changes nothing), each server's result is written, a stop
// turns the servers still pending into not-started with the reason, and a new run of the same
// advisory starts afresh.
func TestPatchRolloutReport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must[bool](t)(s.SeedDemoFleet(ctx))
		plan := func() []PatchServer {
			return []PatchServer{{Server: "live-web1", Role: anyops.RoleWeb, Seq: 0, Canary: true}, {Server: "live-web2", Role: anyops.RoleWeb, Seq: 1}, {Server: "live-task1", Role: anyops.RoleTask, Seq: 2}}
		}
		r := PatchRollout{Advisory: "CVE-2014-0160", WorkflowID: "patch/CVE-2014-0160", RunID: "run1", MaxErrors: 1, Spec: PatchSpec{Advisory: anyops.Heartbleed(), MaxConcurrency: "1"}}
		must[PatchRollout](t)(s.StartPatchRollout(ctx, r, plan()))
		must[PatchRollout](t)(s.StartPatchRollout(ctx, r, plan())) // the retry
		started := time.Now()
		if err := s.RecordPatchServer(ctx, PatchServer{Advisory: r.Advisory, Server: "live-web1", Outcome: anyops.PatchFailed,
			Before:  &anyops.ServerCheck{Versions: map[string]string{"openssl": "1.0.1f-1ubuntu2"}, Check: anyops.CheckVulnerable},
			Message: "apt-get failed", StartedAt: &started, FinishedAt: &started}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPatchRolloutState(ctx, r.Advisory, anyops.RolloutStopped, 2, "2 errors, more than max errors 1"); err != nil {
			t.Fatal(err)
		}
		got := must[PatchRollout](t)(s.GetPatchRollout(ctx, r.Advisory))
		if got.State != anyops.RolloutStopped || got.FinishedAt == nil || got.Errors != 2 || len(got.Servers) != 3 || got.Spec.Advisory.ID != "CVE-2014-0160" {
			t.Fatalf("rollout %+v", got)
		}
		web1, web2 := got.Servers[0], got.Servers[1]
		if web1.Outcome != anyops.PatchFailed || web1.Before == nil || web1.Before.Check != anyops.CheckVulnerable || web1.After != nil || !web1.Canary {
			t.Errorf("web1 %+v", web1)
		}
		if web2.Outcome != anyops.PatchNotStarted || !strings.Contains(web2.Message, "max errors 1") {
			t.Errorf("web2 %+v, want not-started with the reason", web2)
		}
		r.RunID = "run2"
		must[PatchRollout](t)(s.StartPatchRollout(ctx, r, plan()[:1]))
		got = must[PatchRollout](t)(s.GetPatchRollout(ctx, r.Advisory))
		if got.State != anyops.RolloutRunning || len(got.Servers) != 1 || got.Servers[0].Outcome != anyops.PatchPending {
			t.Errorf("second run %+v, want a fresh report", got)
		}
		if err := s.RecordPatchServer(ctx, PatchServer{Advisory: r.Advisory, Server: "live-web2", Outcome: anyops.PatchPatched}); anyops.ErrorCode(err) != anyops.ENOTFOUND {
			t.Errorf("recording a server not in the plan: %v", err)
		}
	})
}

// TestDrains proves drains are recorded once and lifted.
func TestDrains(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must[bool](t)(s.SeedDemoFleet(ctx))
		for range 2 {
			if err := s.DrainServer(ctx, "live-console1", "patch CVE-2014-0160: restarting tornado", "patch/CVE-2014-0160"); err != nil {
				t.Fatal(err)
			}
		}
		d := must[map[string]ServerDrain](t)(s.Drains(ctx))
		if len(d) != 1 || !strings.Contains(d["live-console1"].Reason, "tornado") {
			t.Fatalf("drains %+v", d)
		}
		if err := s.DrainServer(ctx, "no-such", "x", ""); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("drain of an unknown server: %v", err)
		}
		for range 2 {
			if err := s.UndrainServer(ctx, "live-console1"); err != nil {
				t.Fatal(err)
			}
		}
		if d := must[map[string]ServerDrain](t)(s.Drains(ctx)); len(d) != 0 {
			t.Fatalf("drains after undrain %+v", d)
		}
	})
}

// TestDecideNoticesOncePerOwner proves the outbox: the decision writes one notice per owner of
// a custom-domain app on the exposed servers and the audit event, in one transaction; deciding
// again adds nothing; a claim excludes another claimant until its lease ends or it is sent.
func TestDecideNoticesOncePerOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must[bool](t)(s.SeedDemoFleet(ctx))
		text := func(owner string, apps []WebApp) (string, string) {
			return "Heartbleed and " + owner, fmt.Sprintf("%d apps", len(apps))
		}
		var notices []Notice
		for range 2 {
			notices = must[[]Notice](t)(s.DecideNotices(ctx, "CVE-2014-0160", []string{"live-web1", "live-web2"}, "patch/CVE-2014-0160", "anyops.example", text))
		}
		if len(notices) != 2 || notices[0].Owner != "bob" || notices[0].Body != "2 apps" || notices[1].Owner != "carol" {
			t.Fatalf("notices %+v, want bob (2 apps) and carol", notices)
		}
		if notices[0].MessageID != NoticeMessageID(NoticeKey("CVE-2014-0160", "bob"), "anyops.example") {
			t.Errorf("message id %s is not the stable one", notices[0].MessageID)
		}
		events := must[[]AuditEvent](t)(func() ([]AuditEvent, error) { e, _, err := s.ListAudit(ctx, Page{}); return e, err }())
		decisions := 0
		for _, e := range events {
			if e.Action == "notify-owners" {
				decisions++
			}
		}
		if decisions != 1 {
			t.Errorf("%d notify-owners decisions audited, want 1", decisions)
		}
		id := notices[0].ID
		if _, ok, _ := s.ClaimNotice(ctx, id, "a", time.Minute); !ok {
			t.Fatal("first claim refused")
		}
		if _, ok, _ := s.ClaimNotice(ctx, id, "b", time.Minute); ok {
			t.Fatal("a second claimant took a notice under a live lease")
		}
		if _, ok, _ := s.ClaimNotice(ctx, id, "a", time.Minute); !ok {
			t.Fatal("the holder could not renew its claim")
		}
		if err := s.MarkNoticeSent(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n, ok, _ := s.ClaimNotice(ctx, id, "a", time.Minute); ok || n.SentAt == nil {
			t.Fatalf("a sent notice was claimed again: %+v", n)
		}
		// An expired lease lets another claimant take over.
		other := notices[1].ID
		if _, ok, _ := s.ClaimNotice(ctx, other, "a", -time.Second); !ok {
			t.Fatal("claim refused")
		}
		if _, ok, _ := s.ClaimNotice(ctx, other, "b", time.Minute); !ok {
			t.Fatal("an expired lease still excluded another claimant")
		}
	})
}

// TestCertificateRotation proves a rotation keeps one key per rotation key across retries,
// retires the old certificate when the new one becomes active (once, even if completed
// again), and records its revocation.
func TestCertificateRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		first := must[Certificate](t)(s.BeginRotation(ctx, Certificate{Name: "platform", Domain: "www.anyops.example", KeyPEM: "k1", CSRPEM: "c1"}, "initial"))
		if old, err := s.CompleteRotation(ctx, first.ID, "cert1", "01", time.Now().Add(time.Hour)); err != nil || old != nil {
			t.Fatalf("first rotation retired %+v, %v", old, err)
		}
		second := must[Certificate](t)(s.BeginRotation(ctx, Certificate{Name: "platform", Domain: "www.anyops.example", KeyPEM: "k2", CSRPEM: "c2"}, "CVE-2014-0160"))
		again := must[Certificate](t)(s.BeginRotation(ctx, Certificate{Name: "platform", Domain: "www.anyops.example", KeyPEM: "k3", CSRPEM: "c3"}, "CVE-2014-0160"))
		if again.ID != second.ID || again.KeyPEM != "k2" {
			t.Fatalf("a retried rotation made another key: %+v", again)
		}
		for range 2 {
			old, err := s.CompleteRotation(ctx, second.ID, "cert2", "02", time.Now().Add(time.Hour))
			if err != nil || old == nil || old.ID != first.ID || old.State != CertRetired {
				t.Fatalf("rotation retired %+v, %v; want the first certificate", old, err)
			}
		}
		if active := must[Certificate](t)(s.ActiveCertificate(ctx, "platform")); active.ID != second.ID || active.CertPEM != "cert2" {
			t.Fatalf("active %+v", active)
		}
		if err := s.MarkRevoked(ctx, first.ID, "keyCompromise", time.Now()); err != nil {
			t.Fatal(err)
		}
		if c := must[Certificate](t)(s.GetCertificate(ctx, first.ID)); c.State != CertRevoked || c.RevokedAt == nil {
			t.Fatalf("revoked %+v", c)
		}
	})
}
