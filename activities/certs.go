package activities

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
)

// Certificates rotates the platform's own certificate: a new key and CSR, issued through ACME
// (lego) when a CA is configured, with the HTTP-01 challenge answered by the API from the
// inventory (the platform's domain points at it); the old certificate is retired for
// revocation and revoked through ACME where the CA allows. Without a CA the new key and CSR
// are recorded for a manual issue (docs/patches.md).
type Certificates struct {
	Store *inventory.Store
	// Domain is the platform's own domain (its certificate's name); empty: rotation fails.
	Domain string
	// DirectoryURL is the ACME CA's directory; empty: no CA, the CSR waits for a person.
	DirectoryURL string
	// Email is the ACME account's contact.
	Email string
	// HTTP reaches the CA; nil: http.DefaultClient.
	HTTP *http.Client
}

// RotateCertificateInput names a rotation: RotationKey (the advisory) makes a retry find its
// first attempt's key rather than make another.
type RotateCertificateInput struct {
	Name        string `json:"name"`
	RotationKey string `json:"rotation_key"`
	// Reason is the RFC 5280 revocation reason of the old one: keyCompromise, superseded.
	Reason string `json:"reason"`
}

// RotateCertificateOutput says what the rotation did.
type RotateCertificateOutput struct {
	// Rotated: the new certificate is issued and served; the old one retired.
	Rotated       bool   `json:"rotated"`
	CertificateID int64  `json:"certificate_id"`
	Serial        string `json:"serial,omitempty"`
	// CSRPending: no CA configured; the new key and CSR wait for a manual issue.
	CSRPending bool `json:"csr_pending,omitempty"`
	// OldCertificateID is the one replaced (0: none), Revoked whether the CA revoked it.
	OldCertificateID int64  `json:"old_certificate_id,omitempty"`
	OldSerial        string `json:"old_serial,omitempty"`
	Revoked          bool   `json:"revoked"`
	Message          string `json:"message"`
}

var revocationReasons = map[string]uint{"unspecified": 0, "keyCompromise": 1, "superseded": 4}

// RotateCertificate makes (or, on a retry, reuses) the rotation's key and CSR, has it issued,
// makes it active and the old one retired, and revokes the old one.
func (c *Certificates) RotateCertificate(ctx context.Context, in RotateCertificateInput) (RotateCertificateOutput, error) {
	reason, known := revocationReasons[in.Reason]
	if in.Name == "" || in.RotationKey == "" || !known {
		return RotateCertificateOutput{}, invalidInput("Name, RotationKey and a Reason (keyCompromise, superseded, unspecified) are required")
	}
	if c.Domain == "" {
		return RotateCertificateOutput{}, temporal.NewNonRetryableApplicationError("the worker has no platform domain (--platform-domain)", anyops.EUNAVAILABLE, nil)
	}
	keyPEM, csrPEM, err := newKeyAndCSR(c.Domain)
	if err != nil {
		return RotateCertificateOutput{}, err
	}
	rec, err := c.Store.BeginRotation(ctx, inventory.Certificate{Name: in.Name, Domain: c.Domain, KeyPEM: keyPEM, CSRPEM: csrPEM}, in.RotationKey)
	if err != nil {
		return RotateCertificateOutput{}, classify(err)
	}
	out := RotateCertificateOutput{CertificateID: rec.ID}
	if c.DirectoryURL == "" {
		out.CSRPending = true
		out.Message = fmt.Sprintf("new key and CSR recorded (certificate %d); no ACME CA configured: have the CSR issued by hand", rec.ID)
		return out, nil
	}
	client, err := c.acmeClient(ctx)
	if err != nil {
		return out, err
	}
	if rec.State == inventory.CertIssuing {
		block, _ := pem.Decode([]byte(rec.CSRPEM))
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			return out, temporal.NewNonRetryableApplicationError("recorded CSR unreadable: "+err.Error(), anyops.EINTERNAL, err)
		}
		res, err := client.Certificate.ObtainForCSR(ctx, certificate.ObtainForCSRRequest{CSR: csr, Bundle: true})
		if err != nil {
			return out, fmt.Errorf("ACME issue for %s: %w", c.Domain, err)
		}
		leaf, err := firstCertificate(res.Certificate)
		if err != nil {
			return out, err
		}
		if _, err := c.Store.CompleteRotation(ctx, rec.ID, string(res.Certificate), leaf.SerialNumber.Text(16), leaf.NotAfter); err != nil {
			return out, classify(err)
		}
	}
	cur, err := c.Store.GetCertificate(ctx, rec.ID)
	if err != nil {
		return out, classify(err)
	}
	old, err := c.Store.CompleteRotation(ctx, rec.ID, cur.CertPEM, cur.Serial, derefTime(cur.NotAfter)) // returns what it retired
	if err != nil {
		return out, classify(err)
	}
	out.Rotated, out.Serial = true, cur.Serial
	out.Message = fmt.Sprintf("issued %s serial %s through ACME", c.Domain, cur.Serial)
	if old == nil {
		out.Message += "; there was no certificate before"
		return out, nil
	}
	out.OldCertificateID, out.OldSerial = old.ID, old.Serial
	switch {
	case old.State == inventory.CertRevoked:
		out.Revoked = true
	case old.CertPEM == "":
		out.Message += fmt.Sprintf("; certificate %d retired (never issued)", old.ID)
		return out, nil
	default:
		// Signed with the old certificate's own key (RFC 8555 §7.6), as a key-compromise
		// revocation should be: it proves the key is in hand, whichever account issued it.
		if err := c.revokeWithKey(ctx, old, reason); err != nil {
			out.Message += fmt.Sprintf("; old serial %s recorded for revocation (the CA refused: %v)", old.Serial, err)
			return out, nil
		}
		if err := c.Store.MarkRevoked(ctx, old.ID, in.Reason, time.Now()); err != nil {
			return out, classify(err)
		}
		out.Revoked = true
	}
	out.Message += fmt.Sprintf("; old serial %s revoked (%s)", old.Serial, in.Reason)
	return out, nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// revokeWithKey revokes a certificate with a request signed by its own private key.
func (c *Certificates) revokeWithKey(ctx context.Context, cert *inventory.Certificate, reason uint) error {
	block, _ := pem.Decode([]byte(cert.KeyPEM))
	if block == nil {
		return fmt.Errorf("certificate %d: no key recorded", cert.ID)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("certificate %d: key unreadable: %w", cert.ID, err)
	}
	cfg := lego.NewConfig(&acmeUser{key: key})
	cfg.CADirURL = c.DirectoryURL
	if c.HTTP != nil {
		cfg.HTTPClient = c.HTTP
	}
	client, err := lego.NewClient(cfg)
	if err != nil {
		return err
	}
	return client.Certificate.RevokeWithReason(ctx, []byte(cert.CertPEM), &reason)
}

// acmeClient registers a new ACME account for this rotation (the old certificate is revoked
// with its own key, not the account's) and sets the HTTP-01 provider that the API answers
// from the inventory.
func (c *Certificates) acmeClient(ctx context.Context) (*lego.Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	user := &acmeUser{email: c.Email, key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = c.DirectoryURL
	if c.HTTP != nil {
		cfg.HTTPClient = c.HTTP
	}
	client, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("ACME client for %s: %w", c.DirectoryURL, err)
	}
	if user.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err != nil {
		return nil, fmt.Errorf("ACME account at %s: %w", c.DirectoryURL, err)
	}
	if err := client.Challenge.SetHTTP01Provider(&storeHTTP01{store: c.Store}); err != nil {
		return nil, err
	}
	return client, nil
}

type acmeUser struct {
	email string
	key   crypto.Signer
	reg   *acme.ExtendedAccount
}

func (u *acmeUser) GetEmail() string                       { return u.email }
func (u *acmeUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.Signer           { return u.key }

// storeHTTP01 presents HTTP-01 challenges by writing them to the inventory, where every API
// replica answers /.well-known/acme-challenge/{token}.
type storeHTTP01 struct{ store *inventory.Store }

func (p *storeHTTP01) Present(ctx context.Context, domain, token, keyAuth string) error {
	return p.store.PutChallenge(ctx, token, keyAuth, domain)
}

func (p *storeHTTP01) CleanUp(ctx context.Context, _, token, _ string) error {
	return p.store.DeleteChallenge(ctx, token)
}

// newKeyAndCSR makes an ECDSA P-256 key and a CSR for domain, both PEM.
func newKeyAndCSR(domain string) (keyPEM, csrPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain}}, key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), nil
}

func firstCertificate(bundle []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(bundle)
	if block == nil {
		return nil, fmt.Errorf("the CA's answer holds no certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// NewCertificates is the rotation as the worker's settings configure it; the CA bundle, when
// given, is trusted for the ACME directory besides the system's roots.
func NewCertificates(store *inventory.Store, c config.Certificates) (*Certificates, error) {
	out := &Certificates{Store: store, Domain: c.PlatformDomain, DirectoryURL: c.ACMEDirectory, Email: c.ACMEEmail}
	if c.ACMECABundle != "" {
		pemData, err := os.ReadFile(c.ACMECABundle)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-bundle: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("--acme-ca-bundle %s holds no PEM certificate", c.ACMECABundle)
		}
		out.HTTP = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return out, nil
}
