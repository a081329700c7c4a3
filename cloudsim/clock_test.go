package cloudsim

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// realClock is a real-time clock a test moves by hand.
type realClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *realClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *realClock) sleep(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// handClock makes s's real clock one the test moves.
func handClock(s *Sim) *realClock {
	c := &realClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.mu.Lock()
	s.now, s.realBase, s.simBase = c.now, c.t, s.clock()
	s.mu.Unlock()
	return c
}

// TestSetSpeedIsContinuousAndPersists: changing the speed at runtime does not jump simulated
// time — before the change it ran at the old rate, after it at the new one — the change is
// an event, and it outlives a restart.
func TestSetSpeedIsContinuousAndPersists(t *testing.T) {
	state := filepath.Join(t.TempDir(), "cloudsim.json")
	s, err := New(Config{StateFile: state, Speed: 10})
	if err != nil {
		t.Fatal(err)
	}
	real := handClock(s)
	start := s.Now()
	real.sleep(10 * time.Second)
	if got := s.Now().Sub(start); got != 100*time.Second {
		t.Fatalf("10 s real at speed 10: %s simulated", got)
	}
	c, err := s.SetSpeed(100)
	if err != nil || c.Speed != 100 || c.Now.Sub(start) != 100*time.Second {
		t.Fatalf("SetSpeed: %+v %v, want no jump at %s", c, err, start.Add(100*time.Second))
	}
	real.sleep(time.Second)
	if got := s.Now().Sub(start); got != 200*time.Second {
		t.Fatalf("then 1 s real at speed 100: %s simulated in all, want 200 s", got)
	}
	evs := s.QueryEvents(EventQuery{Types: []string{"clock.speed"}})
	if len(evs) != 1 || evs[0].Data["speed"] != 100.0 || evs[0].Data["previous"] != 10.0 || !evs[0].Time.Equal(c.Now) {
		t.Fatalf("clock.speed events: %+v", evs)
	}
	for _, bad := range []float64{0, -1, MaxSpeed + 1} {
		if _, err := s.SetSpeed(bad); err == nil {
			t.Fatalf("SetSpeed(%v) accepted", bad)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(Config{StateFile: state, Speed: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Speed() != 100 {
		t.Fatalf("speed after a restart: %v, want the runtime 100", again.Speed())
	}
}

// TestSetSpeedOverHTTP: PUT /_sim/clock {"speed": N} changes the speed; a bad body is a 400
// with the JSON error shape and changes nothing.
func TestSetSpeedOverHTTP(t *testing.T) {
	f := newFixture(t, Config{Speed: 60})
	put := func(body string) (int, string) { return f.put(t, "/_sim/clock", body) }
	if status, body := put(`{"speed": 600}`); status != 200 || !strings.Contains(body, `"speed":600`) {
		t.Fatalf("PUT speed 600: %d %s", status, body)
	}
	for _, bad := range []string{`{}`, `{"speed": 0}`, `{"speed": -5}`, `{"speed": "fast"}`, `{"speed": 1, "jump": 1}`, `x`} {
		if status, body := put(bad); status != 400 || !strings.Contains(body, `"code":"invalid"`) {
			t.Fatalf("PUT %s: %d %s, want 400 invalid", bad, status, body)
		}
	}
	if f.sim.Speed() != 600 {
		t.Fatalf("speed %v after refused changes, want 600", f.sim.Speed())
	}
}

// TestEventFilters: GET /_sim/events filters by type prefix and resource, and pages forward
// with since and first.
func TestEventFilters(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	v1 := f.createVolume(t, "us-east-1a", 1, nil)
	v2 := f.createVolume(t, "us-east-1a", 1, nil)
	f.sim.Advance(volumeCreateTime)
	var got struct{ Events []Event }
	f.getJSON(t, "/_sim/events?type=volume.&resource="+v2, &got)
	if len(got.Events) != 2 || got.Events[0].Type != "volume.created" || got.Events[1].Type != "volume.available" {
		t.Fatalf("volume events of %s: %+v", v2, got.Events)
	}
	f.getJSON(t, "/_sim/events?type=volume.avail,volume.cr", &got)
	if len(got.Events) != 4 {
		t.Fatalf("two prefixes: %+v", got.Events)
	}
	var page1, page2 struct{ Events []Event }
	f.getJSON(t, "/_sim/events?type=volume.&first=1", &page1)
	if len(page1.Events) != 1 || page1.Events[0].Resource != v1 || page1.Events[0].Type != "volume.created" {
		t.Fatalf("first page: %+v", page1.Events)
	}
	f.getJSON(t, "/_sim/events?type=volume.&first=2&since="+itoa(page1.Events[0].Seq), &page2)
	if len(page2.Events) != 2 || page2.Events[0].Seq <= page1.Events[0].Seq {
		t.Fatalf("second page: %+v", page2.Events)
	}
	for _, bad := range []string{"limit=0", "first=10001", "limit=1&first=1", "colour=red", "since=soon"} {
		if code := f.getJSON(t, "/_sim/events?"+bad, nil); code != 400 {
			t.Fatalf("GET /_sim/events?%s: %d, want 400", bad, code)
		}
	}
}
