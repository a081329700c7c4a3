// Package acmetest runs a real ACME CA for tests: Let's Encrypt's Pebble, in process (its CA,
// validation authority and web front end over TLS on a free loopback port), with a DNS server
// of its own that resolves every name to 127.0.0.1, so Pebble's HTTP-01 validation reaches the
// server the test names by its port — our side answers the challenge.
package acmetest

import (
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// CA is a running Pebble.
type CA struct {
	// DirectoryURL is the ACME directory (https://127.0.0.1:PORT/dir).
	DirectoryURL string
	// HTTP trusts the CA's TLS certificate.
	HTTP *http.Client
	// RootCAPEM is the TLS certificate of the directory, PEM (for --acme-ca-bundle).
	RootCAPEM []byte
	db        *db.MemoryStore
}

// Start starts Pebble; its HTTP-01 validation connects to port 127.0.0.1:httpPort, whatever
// the name. It stops when the test ends. It sets PEBBLE_VA_NOSLEEP (no random waits), so the
// test must not run in parallel.
func Start(t testing.TB, httpPort int) *CA {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	dnsAddr := startDNS(t)
	logger := log.New(io.Discard, "pebble ", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	validator := va.New(logger, httpPort, 0, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	return &CA{DirectoryURL: srv.URL + wfe.DirectoryPath, HTTP: srv.Client(), db: store,
		RootCAPEM: pemOf(srv.Certificate().Raw)}
}

// Revoked reports whether the certificate with that serial (hex, as x509 prints it) is
// revoked at the CA.
func (c *CA) Revoked(serialHex string) bool {
	n, ok := new(big.Int).SetString(serialHex, 16)
	return ok && c.db.GetRevokedCertificateBySerial(n) != nil
}

// startDNS answers A 127.0.0.1 (and no AAAA) for every name, over TCP as Pebble asks.
func startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
