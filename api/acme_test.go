package api

import (
	"context"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/internal/acmetest"
	"github.com/anyops/anyops/inventory"
)

// TestCertificateRotationThroughACME proves the platform certificate's rotation against a real
// ACME CA (Pebble, in process): the rotation makes a key and CSR, lego orders the certificate,
// Pebble validates HTTP-01 by fetching /.well-known/acme-challenge/{token} from this API
// (which answers from the inventory, where the rotation put the key authorization), and
// issues it; a second rotation (the advisory's) retires the first certificate and revokes it
// at the CA with reason keyCompromise; retrying that rotation issues nothing more. Without a
// CA, the rotation leaves its key and CSR for a manual issue.
func TestCertificateRotationThroughACME(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	srv := httptest.NewServer(f.server.Handler())
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	ca := acmetest.Start(t, p)
	certs := &activities.Certificates{Store: f.store, Domain: "www.anyops.example", DirectoryURL: ca.DirectoryURL, Email: "ops@anyops.example", HTTP: ca.HTTP}
	ctx := context.Background()

	first, err := certs.RotateCertificate(ctx, activities.RotateCertificateInput{Name: "platform", RotationKey: "initial", Reason: "superseded"})
	if err != nil || !first.Rotated || first.Serial == "" || first.OldCertificateID != 0 {
		t.Fatalf("first issue: %+v, %v", first, err)
	}
	second, err := certs.RotateCertificate(ctx, activities.RotateCertificateInput{Name: "platform", RotationKey: "CVE-2014-0160", Reason: "keyCompromise"})
	if err != nil || !second.Rotated || second.OldSerial != first.Serial || !second.Revoked {
		t.Fatalf("rotation: %+v, %v", second, err)
	}
	if !ca.Revoked(first.Serial) {
		t.Errorf("the CA does not list serial %s as revoked", first.Serial)
	}
	if ca.Revoked(second.Serial) {
		t.Errorf("the new certificate %s is revoked", second.Serial)
	}
	again, err := certs.RotateCertificate(ctx, activities.RotateCertificateInput{Name: "platform", RotationKey: "CVE-2014-0160", Reason: "keyCompromise"})
	if err != nil || again.CertificateID != second.CertificateID || again.Serial != second.Serial || !again.Revoked {
		t.Fatalf("retried rotation: %+v, %v; want the same certificate", again, err)
	}
	all, err := f.store.ListCertificates(ctx, "platform")
	if err != nil || len(all) != 2 || all[0].State != inventory.CertActive || all[1].State != inventory.CertRevoked || !strings.Contains(all[0].CertPEM, "BEGIN CERTIFICATE") {
		t.Fatalf("certificates %+v, %v", all, err)
	}

	manual := &activities.Certificates{Store: f.store, Domain: "www.anyops.example"}
	out, err := manual.RotateCertificate(ctx, activities.RotateCertificateInput{Name: "platform", RotationKey: "manual", Reason: "superseded"})
	if err != nil || !out.CSRPending || out.Rotated {
		t.Fatalf("without a CA: %+v, %v", out, err)
	}
	rec := f.do("GET", "/v1/certificates", adminToken, "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"state":"issuing"`) || !strings.Contains(rec.Body.String(), "CERTIFICATE REQUEST") {
		t.Errorf("the pending CSR is not listed: %d %s", rec.Code, rec.Body)
	}
}
