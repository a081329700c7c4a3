package activities

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/smtptest"
	"github.com/anyops/anyops/inventory"
)

func noticeStore(t *testing.T) (*inventory.Store, []inventory.Notice) {
	t.Helper()
	ctx := context.Background()
	store, err := inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.SeedDemoFleet(ctx); err != nil {
		t.Fatal(err)
	}
	adv := anyops.Heartbleed()
	notices, err := store.DecideNotices(ctx, adv.ID, []string{"live-web1", "live-web2"}, "test", inventory.DemoPlatformDomain,
		func(owner string, apps []inventory.WebApp) (string, string) { return NoticeText(adv, owner, apps) })
	if err != nil || len(notices) != 2 {
		t.Fatalf("DecideNotices: %v %v", notices, err)
	}
	return store, notices
}

// TestSendNoticesOnceEach proves the sender against a real SMTP server: two senders at once
// deliver each owner's notice exactly once (the claims exclude each other), with its stable
// Message-ID and the owner's domains in it; a later call sends nothing more; a message the
// server refuses is not marked sent, keeps the reason, and goes out on the next call.
func TestSendNoticesOnceEach(t *testing.T) {
	store, notices := noticeStore(t)
	smtp := smtptest.Start(t)
	smtp.Reject("carol@mail.example")
	n := &Notices{Store: store, SMTP: SMTPConfig{Addr: smtp.Addr, From: "security@anyops.example"}}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = n.SendNotices(context.Background(), SendNoticesInput{Advisory: "CVE-2014-0160"})
		}()
	}
	wg.Wait()
	if got := smtp.CountTo(); got["bob@mail.example"] != 1 || got["carol@mail.example"] != 0 {
		t.Fatalf("received %v, want bob once and carol (refused) none", got)
	}
	list, _ := store.ListNotices(context.Background(), "CVE-2014-0160")
	if list[1].SentAt != nil || list[1].LastError == "" {
		t.Fatalf("the refused notice %+v is not left unsent with its reason", list[1])
	}
	smtp.Accept("carol@mail.example")
	out, err := n.SendNotices(context.Background(), SendNoticesInput{Advisory: "CVE-2014-0160"})
	if err != nil || out.Sent != 1 || out.SentBefore != 1 {
		t.Fatalf("second call: %+v, %v", out, err)
	}
	out, err = n.SendNotices(context.Background(), SendNoticesInput{Advisory: "CVE-2014-0160"})
	if err != nil || out.Sent != 0 || out.SentBefore != 2 {
		t.Fatalf("third call: %+v, %v", out, err)
	}
	msgs := smtp.Messages()
	if len(msgs) != 2 || msgs[0].MessageID != notices[0].MessageID || msgs[1].MessageID != notices[1].MessageID {
		t.Fatalf("messages %+v, want one per owner with the notices' Message-IDs", msgs)
	}
	for _, want := range []string{"www.bobsbakery.example", "shop.bobsbakery.example", "CVE-2014-0160"} {
		if !contains(msgs[0].Data, want) {
			t.Errorf("bob's notice does not mention %s:\n%s", want, msgs[0].Data)
		}
	}
}

// TestSendNoticesResidualWindow documents the one duplicate the outbox allows: the server
// accepted a notice and the sender died before recording sent_at. Once the dead sender's lease
// ends, a retry sends it again — with the same Message-ID, by which a receiver can drop it.
// A live lease makes another sender wait (a retryable NoticeClaimed) instead of sending.
func TestSendNoticesResidualWindow(t *testing.T) {
	store, notices := noticeStore(t)
	smtp := smtptest.Start(t)
	n := &Notices{Store: store, SMTP: SMTPConfig{Addr: smtp.Addr, From: "security@anyops.example"}, Lease: time.Hour}
	bob := notices[0]
	// The dead sender: claimed, sent, crashed before MarkNoticeSent.
	claimed, ok, err := store.ClaimNotice(context.Background(), bob.ID, "dead-worker", time.Hour)
	if err != nil || !ok {
		t.Fatal(err)
	}
	if err := n.send(context.Background(), claimed); err != nil {
		t.Fatal(err)
	}
	if _, err := n.SendNotices(context.Background(), SendNoticesInput{Advisory: "CVE-2014-0160"}); err == nil {
		t.Fatal("a notice under another sender's live lease did not hold the call up")
	}
	if got := smtp.CountTo(); got["bob@mail.example"] != 1 || got["carol@mail.example"] != 1 {
		t.Fatalf("received %v", got)
	}
	// The lease ends (the dead sender will never renew it).
	if _, ok, _ := store.ClaimNotice(context.Background(), bob.ID, "dead-worker", -time.Second); !ok {
		t.Fatal("could not expire the lease")
	}
	if _, err := n.SendNotices(context.Background(), SendNoticesInput{Advisory: "CVE-2014-0160"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range smtp.Messages() {
		if m.To[0] == "bob@mail.example" {
			ids = append(ids, m.MessageID)
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] || ids[0] != bob.MessageID {
		t.Fatalf("bob's messages carry %v, want the same Message-ID twice", ids)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestSendNoticeEndsByItsDeadline proves a notice's SMTP conversation ends by the SMTP
// timeout even when the server stops answering mid-way (held after RCPT), and that nothing is
// delivered once the server goes on: a claim's lease counts on it, or a sender held past its
// lease would deliver a notice that a retry had sent meanwhile (chaos seed 2026, patch run 5).
func TestSendNoticeEndsByItsDeadline(t *testing.T) {
	store, notices := noticeStore(t)
	smtp := smtptest.Start(t)
	n := &Notices{Store: store, SMTP: SMTPConfig{Addr: smtp.Addr, From: "security@anyops.example", Timeout: time.Second}}
	held := smtp.HoldNextRcpt()
	sent := make(chan error, 1)
	go func() { sent <- n.send(context.Background(), notices[0]) }()
	<-held
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("a conversation the server never finished reported the notice sent")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the conversation outlived its 1 s deadline by 15 s")
	}
	smtp.ReleaseHolds()
	time.Sleep(200 * time.Millisecond) // the held session goes on, if it can
	if got := smtp.Messages(); len(got) != 0 {
		t.Fatalf("delivered after the sender gave up: %+v", got)
	}
}
