package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// WebApp is a hosted web app on a web server. One on a custom domain (not a subdomain of the
// platform's) serves its owner's own certificate, whose key lives on that server.
type WebApp struct {
	Name         string    `gorm:"column:name;primaryKey" json:"name"`
	Owner        string    `gorm:"column:owner" json:"owner"`
	OwnerEmail   string    `gorm:"column:owner_email" json:"owner_email"`
	Domain       string    `gorm:"column:domain" json:"domain"`
	CustomDomain bool      `gorm:"column:custom_domain" json:"custom_domain"`
	Server       string    `gorm:"column:server" json:"server"`
	CreatedAt    time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Notice is one email of the outbox: written in the transaction that decides to send it,
// claimed and sent by the sender activity, SentAt set only once the SMTP server accepted it.
// IdempotencyKey (advisory/owner) makes deciding again write nothing; MessageID is derived
// from it, so a message sent again after a crash carries the same Message-ID.
type Notice struct {
	ID             int64      `gorm:"column:id;primaryKey" json:"id"`
	IdempotencyKey string     `gorm:"column:idempotency_key" json:"idempotency_key"`
	Advisory       string     `gorm:"column:advisory" json:"advisory"`
	Owner          string     `gorm:"column:owner" json:"owner"`
	Email          string     `gorm:"column:email" json:"email"`
	Subject        string     `gorm:"column:subject" json:"subject"`
	Body           string     `gorm:"column:body" json:"-"`
	MessageID      string     `gorm:"column:message_id" json:"message_id"`
	ClaimedBy      string     `gorm:"column:claimed_by" json:"claimed_by,omitempty"`
	ClaimedUntil   *time.Time `gorm:"column:claimed_until" json:"claimed_until,omitempty"`
	Attempts       int        `gorm:"column:attempts" json:"attempts"`
	SentAt         *time.Time `gorm:"column:sent_at" json:"sent_at,omitempty"`
	LastError      string     `gorm:"column:last_error" json:"last_error,omitempty"`
	CreatedAt      time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt      time.Time  `gorm:"column:updated_at" json:"-"`
}

func (WebApp) TableName() string { return "web_apps" }
func (Notice) TableName() string { return "notices" }

// DemoPlatformDomain is the demo platform's own domain: web apps under it use its
// certificate; others are custom domains with their owners' certificates.
const DemoPlatformDomain = "anyops.example"

// DemoWebApps are the demo fleet's hosted web apps: some on the platform's subdomains, some
// on custom domains (bob has two, so one notice covers both).
func DemoWebApps() []WebApp {
	app := func(name, owner, domain, server string) WebApp {
		return WebApp{Name: name, Owner: owner, OwnerEmail: owner + "@mail.example", Domain: domain,
			CustomDomain: !isPlatformDomain(domain), Server: server}
	}
	return []WebApp{
		app("alice-blog", "alice", "alice."+DemoPlatformDomain, "live-web1"),
		app("bob-bakery", "bob", "www.bobsbakery.example", "live-web1"),
		app("bob-shop", "bob", "shop.bobsbakery.example", "live-web2"),
		app("carol-recipes", "carol", "carol-recipes.example", "live-web2"),
		app("dave-api", "dave", "dave."+DemoPlatformDomain, "live-web2"),
	}
}

func isPlatformDomain(d string) bool {
	return d == DemoPlatformDomain || len(d) > len(DemoPlatformDomain) && d[len(d)-len(DemoPlatformDomain)-1:] == "."+DemoPlatformDomain
}

// UpsertWebApp writes a web app.
func (s *Store) UpsertWebApp(ctx context.Context, a WebApp) ([]string, error) {
	if err := firstError(required("web app name", a.Name), required("owner", a.Owner), required("owner email", a.OwnerEmail),
		required("domain", a.Domain), required("server", a.Server)); err != nil {
		return nil, err
	}
	return upsert(ctx, s.db, &a, "name", a.Name, "web app "+quote(a.Name))
}

// ListWebApps lists the web apps on the given servers (all when none), custom domains only
// when customOnly, by name.
func (s *Store) ListWebApps(ctx context.Context, servers []string, customOnly bool) ([]WebApp, error) {
	q := s.db.WithContext(ctx).Model(&WebApp{})
	if len(servers) > 0 {
		q = q.Where("server IN ?", servers)
	}
	if customOnly {
		q = q.Where("custom_domain = ?", true)
	}
	var apps []WebApp
	return apps, dbError(q.Order("name").Find(&apps).Error, "list web apps")
}

// NoticeText writes one owner's notice about their apps.
type NoticeText func(owner string, apps []WebApp) (subject, body string)

// NoticeKey is the idempotency key of the notice to an owner about an advisory.
func NoticeKey(advisory, owner string) string { return advisory + "/" + owner }

// NoticeMessageID is the stable Message-ID of that notice.
func NoticeMessageID(key, domain string) string {
	sum := sha256.Sum256([]byte(key))
	return "<notice-" + hex.EncodeToString(sum[:12]) + "@" + domain + ">"
}

// DecideNotices decides, in one transaction, to tell the owner of every custom-domain web
// app on the exposed servers: one notice per owner in the outbox, and the decision in the
// audit log. Deciding again (a retry, a second run) adds nothing for owners already told or
// queued. It returns the advisory's notices.
func (s *Store) DecideNotices(ctx context.Context, advisory string, exposed []string, actor, domain string, text NoticeText) ([]Notice, error) {
	if err := firstError(required("advisory", advisory), required("actor", actor)); err != nil {
		return nil, err
	}
	var out []Notice
	err := s.InTx(ctx, func(tx *Store) error {
		apps, err := tx.ListWebApps(ctx, exposed, true)
		if err != nil {
			return err
		}
		byOwner := map[string][]WebApp{}
		for _, a := range apps {
			byOwner[a.Owner] = append(byOwner[a.Owner], a)
		}
		owners := make([]string, 0, len(byOwner))
		for o := range byOwner {
			owners = append(owners, o)
		}
		sort.Strings(owners)
		for _, o := range owners {
			subject, body := text(o, byOwner[o])
			key := NoticeKey(advisory, o)
			n := Notice{IdempotencyKey: key, Advisory: advisory, Owner: o, Email: byOwner[o][0].OwnerEmail,
				Subject: subject, Body: body, MessageID: NoticeMessageID(key, domain)}
			if err := tx.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "idempotency_key"}}, DoNothing: true}).Create(&n).Error; err != nil {
				return err
			}
		}
		key := "notify/" + advisory
		if _, err := tx.RecordAudit(ctx, AuditEvent{Actor: actor, Action: "notify-owners", Subject: advisory, IdempotencyKey: &key,
			Summary: map[string]any{"owners": owners, "exposed_servers": exposed}}); err != nil {
			return err
		}
		out, err = tx.ListNotices(ctx, advisory)
		return err
	})
	return out, dbError(err, "decide notices of "+quote(advisory))
}

// ListNotices lists an advisory's notices by id.
func (s *Store) ListNotices(ctx context.Context, advisory string) ([]Notice, error) {
	var out []Notice
	return out, dbError(s.db.WithContext(ctx).Where("advisory = ?", advisory).Order("id").Find(&out).Error, "list notices")
}

// ClaimNotice takes notice id for claimant until the lease ends: only an unsent notice that
// nobody else holds (or whose holder's lease ran out) is claimed. It returns the notice and
// whether this claimant holds it.
func (s *Store) ClaimNotice(ctx context.Context, id int64, claimant string, lease time.Duration) (Notice, bool, error) {
	t := now()
	until := t.Add(lease)
	res := s.db.WithContext(ctx).Model(&Notice{}).
		Where("id = ? AND sent_at IS NULL AND (claimed_by = ? OR claimed_until IS NULL OR claimed_until < ?)", id, claimant, t).
		Updates(map[string]any{"claimed_by": claimant, "claimed_until": until, "attempts": gorm.Expr("attempts + 1"), "updated_at": t})
	if res.Error != nil {
		return Notice{}, false, dbError(res.Error, "claim notice")
	}
	var n Notice
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&n).Error; err != nil {
		return Notice{}, false, dbError(err, "notice")
	}
	return n, res.RowsAffected == 1, nil
}

// MarkNoticeSent records that the SMTP server accepted the notice. Only an unsent notice
// changes.
func (s *Store) MarkNoticeSent(ctx context.Context, id int64, at time.Time) error {
	return dbError(s.db.WithContext(ctx).Model(&Notice{}).Where("id = ? AND sent_at IS NULL", id).
		Updates(map[string]any{"sent_at": normTime(at), "claimed_until": nil, "last_error": "", "updated_at": now()}).Error, "mark notice sent")
}

// ReleaseNotice gives up claimant's claim after a failed send, recording why.
func (s *Store) ReleaseNotice(ctx context.Context, id int64, claimant, why string) error {
	return dbError(s.db.WithContext(ctx).Model(&Notice{}).Where("id = ? AND claimed_by = ? AND sent_at IS NULL", id, claimant).
		Updates(map[string]any{"claimed_until": nil, "last_error": why, "updated_at": now()}).Error, "release notice")
}
