package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/inventory"
	sbtoken "github.com/anyops/anyops/sandboxd/token"
)

// The chaos world's inventory is a PostgreSQL server of its own (testenv.PostgresServer:
// scripts/postgres-server.sh, the steps scripts/with-postgres.sh takes for `make test`),
// which the postgres-restart fault crashes (pg_ctl -m immediate) and starts again on the same
// data directory while the operation runs. During the outage the real API, served in-process on the same database and
// Temporal, is probed: every answer must be 503 with Retry-After, and a write it accepted
// just before the crash, or just after the restart, must be there afterwards.

const faultPostgresRestart = "postgres-restart"

// The database stays down at least postgresOutage (the API probe asks several times), and on
// until a worker has met the outage (an activity or a loop of the worker logged the inventory
// unavailable), at most postgresOutageMax: an outage no activity saw proves little.
const (
	postgresOutage    = 3 * time.Second
	postgresOutageMax = 20 * time.Second
)

// openStore opens the world's inventory, for the invariants that read it.
func (w *chaosWorld) openStore() (*inventory.Store, error) {
	return inventory.Open(context.Background(), inventory.DriverPostgres, w.pg.DSN)
}

// restartPostgres is the postgres-restart fault: the API's image default set just before
// the crash, the database crashed, every API answer during the outage 503 with Retry-After,
// the database back on its data directory, and both the write accepted before and one
// accepted after there.
func (w *chaosWorld) restartPostgres() error {
	probe, err := w.startAPIProbe()
	if err != nil {
		return err
	}
	defer probe.close()
	// The probe's write is a default image nobody has built: with the console operation's
	// sandboxd registered, the API rightly asks that host for it and refuses it, so there the
	// outage's answers are probed and the writes are not.
	writes := w.sandboxd == nil
	before := fmt.Sprintf("before-%d", time.Now().UnixNano())
	if writes {
		if err := probe.setDefaultImage(before); err != nil {
			return fmt.Errorf("before the crash: %w", err)
		}
	}
	logBefore := fileSize(w.logFile)
	if err := w.pg.Crash(); err != nil {
		return err
	}
	var wrong []string
	crashed := time.Now()
	for {
		wrong = append(wrong, probe.allUnavailable()...)
		time.Sleep(500 * time.Millisecond)
		if down := time.Since(crashed); down >= postgresOutageMax || down >= postgresOutage && w.unavailableLogged(logBefore) > 0 {
			break
		}
	}
	if err := w.pg.Start(); err != nil {
		return err
	}
	w.t.Logf("postgres-restart: down %s; the workers logged the inventory unavailable %d times", time.Since(crashed).Round(100*time.Millisecond), w.unavailableLogged(logBefore))
	if len(wrong) > 0 {
		return fmt.Errorf("the API while the database was down: %s", strings.Join(wrong, "; "))
	}
	if !writes {
		w.t.Logf("postgres-restart: a console host is registered, so the probe's image writes were left out")
		return nil
	}
	// The pool's connections died with the server; the API answers again once it has new ones.
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got, err = probe.defaultImage(); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("the API after the database came back: %w", err)
	}
	if got != before {
		return fmt.Errorf("the default image accepted before the crash (%s) is lost: the API reads %q", before, got)
	}
	after := fmt.Sprintf("after-%d", time.Now().UnixNano())
	if err := probe.setDefaultImage(after); err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	if got, err := probe.defaultImage(); err != nil || got != after {
		return fmt.Errorf("the default image accepted after the restart (%s) reads back as %q (%v)", after, got, err)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// unavailableLogged counts the workers' log lines from offset on that name the inventory
// unavailable or the database's address: the activities (and the worker's own loops) that
// met the outage.
func (w *chaosWorld) unavailableLogged(offset int64) int {
	b, err := os.ReadFile(w.logFile)
	if err != nil || int64(len(b)) < offset {
		return 0
	}
	u, err := url.Parse(w.pg.DSN)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b[offset:]), "\n") {
		if strings.Contains(line, "the inventory is unavailable") || strings.Contains(line, u.Host) {
			n++
		}
	}
	return n
}

// apiProbe is the real API (api.New's handler over HTTP) on the world's database and Temporal.
type apiProbe struct {
	store *inventory.Store
	srv   *httptest.Server
}

const probeToken = "chaos-operator-token"

func (w *chaosWorld) startAPIProbe() (*apiProbe, error) {
	store, err := w.openStore()
	if err != nil {
		return nil, err
	}
	auth, err := api.ParseTokens("chaos:operator:" + probeToken)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	_, key, err := sbtoken.GenerateKey()
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	// A sandboxd key switches PUT /v1/images/default on; with no console host registered it
	// writes the inventory only.
	s := api.New(api.Deps{Store: store, Temporal: w.tc, Auth: auth, Logger: slog.New(slog.DiscardHandler),
		Consoles: api.ConsoleDeps{SandboxdKey: key}})
	return &apiProbe{store: store, srv: httptest.NewServer(s.Handler())}, nil
}

func (p *apiProbe) close() {
	p.srv.Close()
	_ = p.store.Close()
}

func (p *apiProbe) do(method, path, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, p.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+probeToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func imageBody(version string) string {
	b, _ := json.Marshal(api.ImageRequest{Name: "chaos", Version: version})
	return string(b)
}

func (p *apiProbe) setDefaultImage(version string) error {
	resp, body, err := p.do("PUT", "/v1/images/default", imageBody(version))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /v1/images/default = %d %s", resp.StatusCode, body)
	}
	return nil
}

// defaultImage reads the default image's version of image "chaos" from GET /v1/images.
func (p *apiProbe) defaultImage() (string, error) {
	resp, body, err := p.do("GET", "/v1/images?name=chaos", "")
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /v1/images = %d %s", resp.StatusCode, body)
	}
	var page struct {
		Items []inventory.Image `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return "", fmt.Errorf("GET /v1/images: %w: %s", err, body)
	}
	for _, img := range page.Items {
		if img.Default {
			return img.Version, nil
		}
	}
	return "", fmt.Errorf("GET /v1/images: no default among %s", body)
}

// probeRequests are the API requests asked while the database is down: reads of the
// inventory and a write.
var probeRequests = []struct{ method, path, body string }{
	{"GET", "/v1/zones", ""},
	{"GET", "/v1/servers", ""},
	{"GET", "/v1/volumes", ""},
	{"GET", "/v1/incidents", ""},
	{"GET", "/v1/images", ""},
	{"PUT", "/v1/images/default", imageBody("during-outage")},
}

// allUnavailable asks every probe request and names each answer that is not 503 with a
// Retry-After in whole seconds and the EUNAVAILABLE error body.
func (p *apiProbe) allUnavailable() []string {
	var wrong []string
	for _, r := range probeRequests {
		what := r.method + " " + r.path
		resp, body, err := p.do(r.method, r.path, r.body)
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("%s: %v", what, err))
			continue
		}
		var e api.ErrorBody
		_ = json.Unmarshal(body, &e)
		retry, rerr := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusServiceUnavailable || rerr != nil || retry < 1 || e.Error.Code != anyops.EUNAVAILABLE {
			wrong = append(wrong, fmt.Sprintf("%s = %d (Retry-After %q) %s", what, resp.StatusCode, resp.Header.Get("Retry-After"), lastBytes(body, 300)))
		}
	}
	return wrong
}
