package activities

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
)

// SMTPConfig is how notices leave: an SMTP server (submission), its credentials, the sender.
type SMTPConfig struct {
	Addr     string // host:port; empty: notices are not sent (SendNotices fails)
	From     string
	Username string // PLAIN auth when set
	Password string
	// StartTLS asks for STARTTLS before authenticating.
	StartTLS bool
	// Timeout bounds one message's SMTP conversation, the connection included; zero means 30s.
	Timeout time.Duration
}

func (c SMTPConfig) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 30 * time.Second
	}
	return c.Timeout
}

// Notices sends the outbox's notices by SMTP. Register it with a worker as a struct.
type Notices struct {
	Store *inventory.Store
	SMTP  SMTPConfig
	// Lease is how long a claim on a notice lasts; zero means the SMTP timeout and
	// leaseMargin. It must be longer than one message takes, so that a claim outlives its
	// sender only when the sender died; a message's conversation ends by the SMTP timeout.
	Lease time.Duration
}

// leaseMargin is how much longer than the SMTP conversation a claim lasts: for the write of
// sent_at after the server's answer.
const leaseMargin = 30 * time.Second

func (n *Notices) lease() time.Duration {
	if n.Lease > 0 {
		return n.Lease
	}
	return n.SMTP.timeout() + leaseMargin
}

// SendNoticesInput names the advisory whose notices to send.
type SendNoticesInput struct {
	Advisory string `json:"advisory"`
}

// SendNoticesOutput counts them.
type SendNoticesOutput struct {
	Sent       int `json:"sent"`        // accepted by the SMTP server in this call
	SentBefore int `json:"sent_before"` // sent by an earlier call (a retry, another run)
	// Waiting counts notices left in the outbox because no SMTP server is configured.
	Waiting int `json:"waiting,omitempty"`
}

// SendNotices sends each unsent notice of the advisory once: it claims the notice (a lease in
// the inventory; another sender's live claim is waited out), sends it with its stable
// Message-ID, and sets sent_at once the server accepted the DATA. The residual window: a
// crash after the server's 250 and before sent_at is written sends that notice again on the
// retry, with the same Message-ID (receivers may drop the duplicate by it). A notice held by a
// live claim of someone else makes the activity fail retryably, to try again after the lease.
func (n *Notices) SendNotices(ctx context.Context, in SendNoticesInput) (SendNoticesOutput, error) {
	if in.Advisory == "" {
		return SendNoticesOutput{}, invalidInput("Advisory is required")
	}
	lease := n.lease()
	// One claimant per attempt: a retry must not share the claim of an attempt that may still
	// be sending (a worker that lost its heartbeat but not its connection).
	claimant := "sender/" + uuid.NewString()
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		claimant = fmt.Sprintf("%s/%s/%s/%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityID, info.Attempt)
	}
	notices, err := n.Store.ListNotices(ctx, in.Advisory)
	if err != nil {
		return SendNoticesOutput{}, classify(err)
	}
	var out SendNoticesOutput
	held := 0
	for _, notice := range notices {
		if notice.SentAt != nil {
			out.SentBefore++
			continue
		}
		if n.SMTP.Addr == "" || n.SMTP.From == "" {
			out.Waiting++ // no SMTP server (--smtp-addr, --smtp-from): they wait in the outbox
			continue
		}
		claimed, ok, err := n.Store.ClaimNotice(ctx, notice.ID, claimant, lease)
		if err != nil {
			return out, classify(err)
		}
		if claimed.SentAt != nil {
			out.SentBefore++
			continue
		}
		if !ok {
			held++
			continue
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, notice.ID)
		}
		if err := n.send(ctx, claimed); err != nil {
			_ = n.Store.ReleaseNotice(ctx, notice.ID, claimant, err.Error())
			return out, fmt.Errorf("notice %d to %s: %w", notice.ID, notice.Email, err)
		}
		if err := n.Store.MarkNoticeSent(ctx, notice.ID, time.Now()); err != nil {
			return out, classify(err)
		}
		out.Sent++
	}
	if held > 0 {
		return out, temporal.NewApplicationError(fmt.Sprintf("%d notices are claimed by another sender; trying again after its lease", held), ErrNoticeClaimed)
	}
	return out, nil
}

// ErrNoticeClaimed is the retryable error of notices another sender holds.
const ErrNoticeClaimed = "NoticeClaimed"

// send delivers one notice: MAIL, RCPT, DATA; nil only when the server accepted it.
func (n *Notices) send(ctx context.Context, notice inventory.Notice) error {
	// One deadline for the dial and the conversation: a claim's lease is worked out from it.
	deadline := time.Now().Add(n.SMTP.timeout())
	dialCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dialCtx, "tcp", n.SMTP.Addr)
	if err != nil {
		return err
	}
	// go-smtp sets a deadline of its own (minutes) on the connection for each command and
	// clears it after, so a deadline set here would not hold: the connection is closed when
	// the conversation's deadline passes instead. A sender held past its claim's lease then
	// cannot go on to deliver a notice that a retry has sent meanwhile.
	expire := time.AfterFunc(time.Until(deadline), func() { _ = conn.Close() })
	defer expire.Stop()
	var c *smtp.Client
	if n.SMTP.StartTLS {
		host, _, _ := net.SplitHostPort(n.SMTP.Addr)
		if c, err = smtp.NewClientStartTLS(conn, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			conn.Close()
			return err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if n.SMTP.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", n.SMTP.Username, n.SMTP.Password)); err != nil {
			return err
		}
	}
	if err := c.Mail(n.SMTP.From, nil); err != nil {
		return err
	}
	if err := c.Rcpt(notice.Email, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(formatMessage(n.SMTP.From, notice))); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // the server's answer to the DATA: accepted or not
		return err
	}
	return c.Quit()
}

// formatMessage is the RFC 5322 message of a notice.
func formatMessage(from string, n inventory.Notice) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\nDate: %s\r\n", from, n.Email, n.Subject, n.MessageID, n.CreatedAt.UTC().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n")
	fmt.Fprintf(&b, "X-Anyops-Notice: %s\r\n\r\n", n.IdempotencyKey)
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(n.Body, "\r\n", "\n"), "\n", "\r\n"))
	return b.String()
}

// SMTPFromConfig is the notices' SMTP settings as the worker's flags give them.
func SMTPFromConfig(c config.SMTP) SMTPConfig {
	return SMTPConfig{Addr: c.Addr, From: c.From, Username: c.Username, Password: c.Password, StartTLS: c.StartTLS}
}
