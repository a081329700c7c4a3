package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// SimControl is a client of cloudsim's control API (/_sim, docs/cloudsim.md): the clock, the
// event log, faults and scenarios. Only drills use it; production has no cloudsim.
type SimControl struct {
	// URL is cloudsim's base URL (dev: the AWS endpoint, http://127.0.0.1:4566).
	URL  string
	HTTP *http.Client
}

// NewSimControl returns a client of the cloudsim at base.
func NewSimControl(base string) *SimControl {
	return &SimControl{URL: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// do sends one request; a 4xx answer is a non-retryable InvalidInput (what was sent is wrong),
// anything else that is not 2xx a retryable error.
func (s *SimControl) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := s.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			r = bytes.NewReader(raw)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			r = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cloudsim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("cloudsim %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb anyops.ErrorBody
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
			msg = eb.Error.Message
		}
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return invalidInput("cloudsim %s %s: %s (HTTP %d)", method, path, msg, resp.StatusCode)
		}
		return fmt.Errorf("cloudsim %s %s: %s (HTTP %d)", method, path, msg, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("cloudsim %s %s: the answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// Clock reads cloudsim's clock.
func (s *SimControl) Clock(ctx context.Context) (cloudsim.ClockInfo, error) {
	var c cloudsim.ClockInfo
	return c, s.do(ctx, http.MethodGet, "/_sim/clock", nil, nil, &c)
}

// SetSpeed changes cloudsim's speed at once.
func (s *SimControl) SetSpeed(ctx context.Context, speed float64) (cloudsim.ClockInfo, error) {
	var c cloudsim.ClockInfo
	return c, s.do(ctx, http.MethodPut, "/_sim/clock", nil, map[string]float64{"speed": speed}, &c)
}

// Volume reads what cloudsim knows of the data on a volume.
func (s *SimControl) Volume(ctx context.Context, id string) (cloudsim.VolumeData, error) {
	var d cloudsim.VolumeData
	return d, s.do(ctx, http.MethodGet, "/_sim/volumes/"+url.PathEscape(id), nil, nil, &d)
}

// FillVolume records gib GiB written on a volume (cloudsim.Sim.FillVolume).
func (s *SimControl) FillVolume(ctx context.Context, id string, gib float64) (cloudsim.VolumeData, error) {
	var d cloudsim.VolumeData
	return d, s.do(ctx, http.MethodPost, "/_sim/volumes/"+url.PathEscape(id)+"/fill", nil, map[string]float64{"gib": gib}, &d)
}

// LoadScenario schedules a cloudsim scenario (the JSON list of {at, fault}).
func (s *SimControl) LoadScenario(ctx context.Context, scenario []byte) (int, error) {
	var out struct {
		Scheduled int `json:"scheduled"`
	}
	return out.Scheduled, s.do(ctx, http.MethodPost, "/_sim/scenario", nil, scenario, &out)
}

// EventPage reads the oldest first events after sequence number since whose types start with
// one of types (all types when empty).
func (s *SimControl) EventPage(ctx context.Context, since int64, first int, types []string) ([]cloudsim.Event, error) {
	q := url.Values{"since": {strconv.FormatInt(since, 10)}, "first": {strconv.Itoa(first)}}
	if len(types) > 0 {
		q.Set("type", strings.Join(types, ","))
	}
	var out struct {
		Events []cloudsim.Event `json:"events"`
	}
	return out.Events, s.do(ctx, http.MethodGet, "/_sim/events", q, nil, &out)
}

// LastEventSeq is the sequence number of the newest event (0 for an empty log).
func (s *SimControl) LastEventSeq(ctx context.Context) (int64, error) {
	var out struct {
		Events []cloudsim.Event `json:"events"`
	}
	if err := s.do(ctx, http.MethodGet, "/_sim/events", url.Values{"limit": {"1"}}, nil, &out); err != nil {
		return 0, err
	}
	if len(out.Events) == 0 {
		return 0, nil
	}
	return out.Events[len(out.Events)-1].Seq, nil
}

// Faults lists the active faults.
func (s *SimControl) Faults(ctx context.Context) ([]cloudsim.Fault, error) {
	var out struct {
		Faults []cloudsim.Fault `json:"faults"`
	}
	return out.Faults, s.do(ctx, http.MethodGet, "/_sim/faults", nil, nil, &out)
}

// DeleteFault ends an active fault; one gone already is no error.
func (s *SimControl) DeleteFault(ctx context.Context, id string) error {
	err := s.do(ctx, http.MethodDelete, "/_sim/faults/"+url.PathEscape(id), nil, nil, nil)
	if err != nil && strings.Contains(err.Error(), "HTTP 404") {
		return nil
	}
	return err
}
