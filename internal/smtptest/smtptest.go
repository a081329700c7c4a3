// Package smtptest runs a real SMTP server for tests (emersion/go-smtp's) on a free loopback
// port and keeps every message it accepted, so a test counts what really arrived.
package smtptest

import (
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From      string
	To        []string
	MessageID string
	Subject   string
	Data      string
}

// Server is a running SMTP server.
type Server struct {
	Addr string
	mu   sync.Mutex
	msgs []Message
	// reject, when set, refuses the DATA of messages to that recipient (a 554 answer).
	reject map[string]bool
	// hold, when set, is closed by the next RCPT, which then waits for released: a sender
	// caught mid-conversation, its message not accepted (HoldNextRcpt).
	hold         chan struct{}
	released     chan struct{}
	releasedOnce sync.Once
}

// Start starts a server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{reject: map[string]bool{}, released: make(chan struct{})}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		s.ReleaseHolds()
		_ = srv.Close()
	})
	return s
}

// HoldNextRcpt makes the next RCPT wait, before any DATA, until ReleaseHolds; the channel
// closes when a sender reaches it (the chaos harness kills the sender there: nothing was
// accepted, so the retry must send the message once).
func (s *Server) HoldNextRcpt() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = make(chan struct{})
	return s.hold
}

// ReleaseHolds lets held conversations go on; again is a no-op.
func (s *Server) ReleaseHolds() { s.releasedOnce.Do(func() { close(s.released) }) }

// Reject makes the server refuse messages to rcpt until Accept.
func (s *Server) Reject(rcpt string) { s.mu.Lock(); s.reject[rcpt] = true; s.mu.Unlock() }

// Accept lets messages to rcpt through again.
func (s *Server) Accept(rcpt string) { s.mu.Lock(); delete(s.reject, rcpt); s.mu.Unlock() }

// Messages returns what was accepted, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// CountTo counts the accepted messages to each recipient.
func (s *Server) CountTo() map[string]int {
	out := map[string]int{}
	for _, m := range s.Messages() {
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{srv: s}, nil }

type session struct {
	srv  *Server
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.srv.mu.Lock()
	hold := x.srv.hold
	x.srv.hold = nil
	x.srv.mu.Unlock()
	if hold != nil {
		close(hold)
		<-x.srv.released
	}
	x.to = append(x.to, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.srv.mu.Lock()
	defer x.srv.mu.Unlock()
	for _, to := range x.to {
		if x.srv.reject[to] {
			return &smtp.SMTPError{Code: 554, Message: "rejected for the test"}
		}
	}
	m := Message{From: x.from, To: x.to, Data: string(b)}
	if msg, err := mail.ReadMessage(strings.NewReader(m.Data)); err == nil {
		m.MessageID, m.Subject = msg.Header.Get("Message-ID"), msg.Header.Get("Subject")
	}
	x.srv.msgs = append(x.srv.msgs, m)
	return nil
}
