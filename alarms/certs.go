package alarms

import (
	"container/list"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/anyops/anyops"
)

// Defaults of CertCache.
const (
	DefaultCertTTL     = time.Hour
	DefaultCertEntries = 64
	// certFailureTTL is how long a failed fetch is remembered, so that a flood of messages
	// naming one bad URL on an allowed host costs one fetch, not one each.
	certFailureTTL = 10 * time.Second
	// maxCertBytes bounds a certificate download; SNS's PEM files are under 2 KiB.
	maxCertBytes = 64 << 10
	// fetchTimeout bounds one HTTPS request (certificate or subscription confirmation).
	fetchTimeout = 10 * time.Second
)

// CertCache fetches SNS signing certificates over HTTPS and keeps each for TTL, at most Max of
// them (the least recently used goes first). Concurrent requests for one URL share one fetch.
// It fetches only what it is asked for: the verifier asks only for allowed URLs.
type CertCache struct {
	client  *http.Client
	ttl     time.Duration
	max     int
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*list.Element // of *certEntry, most recently used at the front
	order   *list.List
	group   singleflight.Group
	fetches atomic.Int64
}

type certEntry struct {
	url     string
	cert    *x509.Certificate
	err     error
	expires time.Time
}

// NewCertCache returns a cache fetching with client (see NewHTTPClient); ttl and max zero
// mean DefaultCertTTL and DefaultCertEntries.
func NewCertCache(client *http.Client, ttl time.Duration, max int) *CertCache {
	if ttl <= 0 {
		ttl = DefaultCertTTL
	}
	if max <= 0 {
		max = DefaultCertEntries
	}
	return &CertCache{client: client, ttl: ttl, max: max, now: time.Now, entries: map[string]*list.Element{}, order: list.New()}
}

// Fetches counts the certificate downloads so far.
func (c *CertCache) Fetches() int64 { return c.fetches.Load() }

// Get returns the certificate at url, from the cache while it is fresh. A download that fails
// is EUNAVAILABLE (the host may be down for a moment: SNS retries on 5xx); what downloads but
// is not one PEM certificate is EFORBIDDEN.
func (c *CertCache) Get(ctx context.Context, url string) (*x509.Certificate, error) {
	if e := c.lookup(url); e != nil {
		return e.cert, e.err
	}
	v, _, _ := c.group.Do(url, func() (any, error) {
		if e := c.lookup(url); e != nil { // filled while we waited for the group
			return e, nil
		}
		// The download serves every caller waiting on it: it must not end with the first.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		cert, err := c.fetch(fctx, url)
		ttl := c.ttl
		if err != nil {
			ttl = certFailureTTL
		}
		e := &certEntry{url: url, cert: cert, err: err, expires: c.now().Add(ttl)}
		c.store(e)
		return e, nil
	})
	e := v.(*certEntry)
	return e.cert, e.err
}

func (c *CertCache) lookup(url string) *certEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[url]
	if !ok {
		return nil
	}
	e := el.Value.(*certEntry)
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, url)
		return nil
	}
	c.order.MoveToFront(el)
	return e
}

func (c *CertCache) store(e *certEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.url]; ok {
		c.order.Remove(el)
	}
	c.entries[e.url] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*certEntry).url)
	}
}

// Len is how many certificates (and remembered failures) the cache holds.
func (c *CertCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *CertCache) fetch(ctx context.Context, url string) (*x509.Certificate, error) {
	c.fetches.Add(1)
	body, err := getHTTPS(ctx, c.client, url, maxCertBytes)
	if err != nil {
		return nil, fmt.Errorf("fetch SNS signing certificate: %w: %w", anyops.Errorf(anyops.EUNAVAILABLE, "the SNS signing certificate %s cannot be fetched now", url), err)
	}
	block, rest := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, anyops.Errorf(anyops.EFORBIDDEN, "%s is not a PEM certificate", url)
	}
	if extra, _ := pem.Decode(rest); extra != nil && extra.Type != "CERTIFICATE" {
		return nil, anyops.Errorf(anyops.EFORBIDDEN, "%s holds a %s besides the certificate", url, extra.Type)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, anyops.Errorf(anyops.EFORBIDDEN, "%s is not a valid certificate: %v", url, err)
	}
	return cert, nil
}

// getHTTPS GETs url and returns at most limit bytes of a 200 answer's body.
func getHTTPS(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: url, status: resp.Status, code: resp.StatusCode}
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: answer longer than %d bytes", url, limit)
	}
	return body, nil
}

// statusError is an answer other than 200.
type statusError struct {
	url, status string
	code        int
}

func (e *statusError) Error() string { return "GET " + e.url + ": " + e.status }

// errNoRedirects: a certificate or a subscription is fetched from the URL that was checked,
// never from wherever that URL redirects to.
var errNoRedirects = errors.New("redirects are not followed")

// NewHTTPClient is the HTTPS client that fetches signing certificates and confirms
// subscriptions: the system's roots plus, when caFile is not empty, the PEM certificates in it
// (cloudsim's CA in dev), TLS 1.2 at least, no redirects, a timeout per request.
func NewHTTPClient(caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("SNS signing CA: %w", err)
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("SNS signing CA %s: no PEM certificate in it", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport:     tr,
		Timeout:       fetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errNoRedirects },
	}, nil
}
