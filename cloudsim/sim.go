// Package cloudsim is a simulated AWS fleet: an HTTP endpoint that speaks enough of EC2's Query
// protocol and SSM's JSON protocol for aws-sdk-go-v2 clients pointed at it through BaseEndpoint.
// Every operation takes simulated time from a documented model (docs/cloudsim.md); faults are
// injected through /_sim/faults or scenario files; state persists in a JSON file.
//
// Resources progress lazily: there is no goroutine per resource. Every request first settles the
// world up to the current simulated time, stepping through scheduled faults in order, so a
// snapshot that was slowed half way through is exactly as far along as the model says.
package cloudsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/anyops/anyops"
)

// Config configures a Sim.
type Config struct {
	Addr      string  // listen address for Run
	StateFile string  // JSON state file; empty keeps state in memory only
	Speed     float64 // simulated seconds per real second; 0 means 1
	Region    string  // default us-east-1
	Seed      int64   // seeds resource IDs, so a fresh fleet is reproducible
	Logger    *slog.Logger
	// Scenario is a scenario file (JSON or YAML) loaded at start; its times count from the load.
	Scenario string
	// SNS and Alarms: cloudsim's CloudWatch status-check alarms and the SNS topic they
	// publish to (cloudwatch_sns.go, sns.go); SNS is off without a certificate and key.
	SNS    SNSConfig
	Alarms AlarmConfig
}

// Sim is one simulated cloud. All methods are safe for concurrent use.
type Sim struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	st   *state
	zone map[string]bool // known zone names

	// The clock: simulated time = simBase + (real elapsed since realBase) × speed + skew.
	simBase  time.Time
	realBase time.Time
	now      func() time.Time // real clock, replaceable in tests

	throttles map[string]*rate.Limiter // fault id -> limiter of a rate throttle
	sns       *snsIdentity             // the SNS signing identity; nil: SNS is off

	dirty   bool
	saveMu  sync.Mutex
	stop    chan struct{}
	stopped sync.WaitGroup
	closed  bool
}

// simEpoch is where a fresh simulated clock starts: a fixed, recognisable date, so event logs
// of two runs line up.
var simEpoch = time.Date(2014, time.July, 15, 9, 0, 0, 0, time.UTC)

// New builds a Sim, loading cfg.StateFile when it exists.
func New(cfg Config) (*Sim, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Speed < 0 {
		return nil, fmt.Errorf("cloudsim: speed must be positive, got %v", cfg.Speed)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		cfg:       cfg,
		log:       cfg.Logger,
		now:       time.Now,
		zone:      map[string]bool{},
		throttles: map[string]*rate.Limiter{},
		stop:      make(chan struct{}),
	}
	for _, z := range zoneNames(cfg.Region) {
		s.zone[z] = true
	}
	st := newState(cfg.Seed, simEpoch)
	if cfg.StateFile != "" {
		loaded, err := loadState(cfg.StateFile)
		switch {
		case err == nil:
			st = loaded
		case errors.Is(err, os.ErrNotExist):
		default:
			return nil, fmt.Errorf("cloudsim: load state %s: %w", cfg.StateFile, err)
		}
	}
	s.st = st
	if st.Speed > 0 && st.Speed != cfg.Speed {
		// A speed set at runtime (SetSpeed) outlives a restart, as the clock does.
		s.log.Info("cloudsim: the speed set at runtime persists", "speed", st.Speed, "configured", cfg.Speed)
		s.cfg.Speed = st.Speed
	}
	s.simBase = st.Clock
	s.realBase = s.now()
	if err := s.startSNS(); err != nil {
		return nil, err
	}
	if cfg.Scenario != "" {
		data, err := os.ReadFile(cfg.Scenario)
		if err != nil {
			return nil, fmt.Errorf("cloudsim: scenario: %w", err)
		}
		if _, err := s.LoadScenario(data); err != nil {
			return nil, fmt.Errorf("cloudsim: scenario %s: %w", cfg.Scenario, err)
		}
	}
	if cfg.StateFile != "" {
		s.stopped.Add(1)
		go s.saveLoop()
	}
	if s.sns != nil {
		s.stopped.Add(1)
		go s.snsLoop()
	}
	return s, nil
}

// startSNS loads the SNS signing identity when one is configured and subscribes the
// configured endpoint (once: a subscription is kept with the state).
func (s *Sim) startSNS() error {
	c := s.cfg.SNS
	if c.CertFile == "" && c.KeyFile == "" {
		if c.Endpoint != "" {
			return fmt.Errorf("cloudsim: an SNS endpoint needs the signing certificate and key")
		}
		return nil
	}
	switch {
	case c.SignatureVersion < 0 || c.SignatureVersion > 2:
		return fmt.Errorf("cloudsim: SNS SignatureVersion must be 1 or 2, got %d", c.SignatureVersion)
	case c.Duplicates < 0 || c.Duplicates > 10:
		return fmt.Errorf("cloudsim: SNS duplicates must be between 0 and 10, got %d", c.Duplicates)
	case c.Addr == "":
		return fmt.Errorf("cloudsim: SNS needs the address of its HTTPS listener")
	case c.TopicARN != "" && !strings.HasPrefix(c.TopicARN, "arn:aws:sns:"):
		return fmt.Errorf("cloudsim: SNS topic %q is not an SNS topic ARN", c.TopicARN)
	}
	id, err := loadSNSIdentity(c)
	if err != nil {
		return fmt.Errorf("cloudsim: SNS: %w", err)
	}
	s.sns = id
	if c.Endpoint != "" {
		if _, err := s.SNSSubscribe(c.Endpoint); err != nil {
			return fmt.Errorf("cloudsim: SNS endpoint: %w", err)
		}
	}
	return nil
}

// Now returns the current simulated time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock()
}

// clock returns simulated now; callers hold s.mu. Simulated time never runs backwards and is
// truncated to milliseconds, the precision EC2 timestamps carry.
func (s *Sim) clock() time.Time {
	elapsed := s.now().Sub(s.realBase)
	t := s.simBase.Add(time.Duration(float64(elapsed) * s.cfg.Speed)).Truncate(time.Millisecond)
	if t.Before(s.st.Clock) {
		return s.st.Clock
	}
	return t
}

// Advance moves the simulated clock forward by d at once (tests, demos) and settles the world.
func (s *Sim) Advance(d time.Duration) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 {
		s.simBase = s.simBase.Add(d)
	}
	now := s.clock()
	s.settle(now)
	s.markDirty()
	return now
}

// Speed is the number of simulated seconds per real second.
func (s *Sim) Speed() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.Speed
}

// MaxSpeed bounds SetSpeed: beyond it a millisecond of real time is more than a simulated
// minute and the clock's millisecond truncation shows.
const MaxSpeed = 100000

// SetSpeed changes the speed factor at once. Simulated time is continuous across the change
// (no jump: from now on it runs at the new rate), the change is an event (clock.speed) and it
// persists with the state, also across a restart.
func (s *Sim) SetSpeed(speed float64) (ClockInfo, error) {
	if !(speed > 0 && speed <= MaxSpeed) {
		return ClockInfo{}, fmt.Errorf("speed must be above 0 and at most %d, got %v", MaxSpeed, speed)
	}
	now := s.begin()
	defer s.mu.Unlock()
	prev := s.cfg.Speed
	s.simBase, s.realBase = now, s.now()
	s.st.Clock = now
	s.cfg.Speed, s.st.Speed = speed, speed
	s.eventData(now, "clock.speed", "", map[string]any{"speed": speed, "previous": prev}, "speed %g → %g simulated seconds per real second", prev, speed)
	return ClockInfo{Now: now, Speed: speed}, nil
}

// Region is the simulated region.
func (s *Sim) Region() string { return s.cfg.Region }

// begin locks the sim and settles it to simulated now; the caller must call s.mu.Unlock.
func (s *Sim) begin() time.Time {
	s.mu.Lock()
	now := s.clock()
	s.settle(now)
	return now
}

// Handler serves EC2 (Query), SSM (JSON, routed by X-Amz-Target) and the /_sim control API.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	s.simRoutes(mux)
	mux.HandleFunc("/2013-04-01/", s.serveRoute53)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "" {
			s.serveSSM(w, r)
			return
		}
		s.serveEC2(w, r)
	})
	return recoverer(s.log, mux)
}

// recoverer turns a panic into a 500 without internals, so no panic reaches a client.
func recoverer(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				log.Error("cloudsim: panic serving request", "path", r.URL.Path, "panic", v)
				writeSimError(w, http.StatusInternalServerError, anyops.EINTERNAL, "internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// Close stops the background saver and writes the state file a last time.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.stopped.Wait()
	return s.save()
}

// Run listens on cfg.Addr and serves until ctx is done, persisting state as it goes.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("cloudsim: listen: %w", err)
	}
	if s.sns != nil {
		snsLn, err := net.Listen("tcp", cfg.SNS.Addr)
		if err != nil {
			ln.Close()
			_ = s.Close()
			return fmt.Errorf("cloudsim: listen for SNS: %w", err)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			if err := s.ServeSNS(ctx, snsLn); err != nil {
				s.log.Error("cloudsim: SNS listener", "err", err)
			}
		}()
		s.log.Info("cloudsim SNS listening", "addr", snsLn.Addr().String(), "topic", s.snsTopic())
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then closes the Sim.
func (s *Sim) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("cloudsim listening", "addr", ln.Addr().String(), "speed", s.Speed(),
		"region", s.cfg.Region, "state", s.cfg.StateFile, "sim_now", s.Now().Format(time.RFC3339))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
		return s.Close()
	case err := <-errc:
		_ = s.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// markDirty asks the saver to write the state file soon; callers hold s.mu.
func (s *Sim) markDirty() { s.dirty = true }

// saveLoop writes the state file at most every 250 ms while something changed.
func (s *Sim) saveLoop() {
	defer s.stopped.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.mu.Lock()
			dirty := s.dirty
			s.mu.Unlock()
			if dirty {
				if err := s.save(); err != nil {
					s.log.Error("cloudsim: save state", "file", s.cfg.StateFile, "err", err)
				}
			}
		}
	}
}

// save writes the state atomically: a temp file in the same directory, then rename.
func (s *Sim) save() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	// Settled, not merely stamped: the clock is where integration (DRBD) resumes.
	s.settle(s.clock())
	data, err := json.MarshalIndent(s.st, "", " ")
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.cfg.StateFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".cloudsim-state-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), s.cfg.StateFile)
}

func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if st.Format < stateFormat && len(st.Instances) > 0 {
		return nil, fmt.Errorf("the fleet in it was built by an older cloudsim (state format %d, this one is %d: hosts configured by tags, devices without guest names); delete the file for a fresh fleet", st.Format, stateFormat)
	}
	st.Format = stateFormat
	st.init()
	return &st, nil
}
