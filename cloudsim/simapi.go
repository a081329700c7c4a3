package cloudsim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// The /_sim control API: the clock, the event log, faults and scenarios, and a read-only view
// of the simulated hosts. Errors use Anyops's JSON shape {"error":{"code","message"}}.

func (s *Sim) simRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/clock", s.handleClock)
	mux.HandleFunc("PUT /_sim/clock", s.handleSetClock)
	mux.HandleFunc("POST /_sim/clock/advance", s.handleAdvance)
	mux.HandleFunc("GET /_sim/events", s.handleEvents)
	mux.HandleFunc("GET /_sim/faults", s.handleListFaults)
	mux.HandleFunc("POST /_sim/faults", s.handleInjectFault)
	mux.HandleFunc("DELETE /_sim/faults/{id}", s.handleDeleteFault)
	mux.HandleFunc("POST /_sim/scenario", s.handleScenario)
	mux.HandleFunc("GET /_sim/hosts/{id}", s.handleHost)
	mux.HandleFunc("GET /_sim/volumes/{id}", s.handleVolume)
	mux.HandleFunc("POST /_sim/volumes/{id}/fill", s.handleFill)
	mux.HandleFunc("GET /_sim/sns", s.handleSNS)
	mux.HandleFunc("POST /_sim/sns/redeliver", s.handleRedeliver)
	mux.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, "no such cloudsim control endpoint: "+r.Method+" "+r.URL.Path)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeSimError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// ClockInfo is the body of GET /_sim/clock.
type ClockInfo struct {
	Now   time.Time `json:"now"`
	Speed float64   `json:"speed"`
}

func (s *Sim) handleClock(w http.ResponseWriter, _ *http.Request) {
	now := s.begin()
	speed := s.cfg.Speed
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, ClockInfo{Now: now, Speed: speed})
}

func (s *Sim) handleSetClock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Speed *float64 `json:"speed"`
	}
	if err := readJSON(r, &in); err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.Error())
		return
	}
	if in.Speed == nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, `the body must set "speed"`)
		return
	}
	c, err := s.SetSpeed(*in.Speed)
	if err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Sim) handleAdvance(w http.ResponseWriter, r *http.Request) {
	var in struct {
		By string `json:"by"`
	}
	if err := readJSON(r, &in); err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.Error())
		return
	}
	d, err := time.ParseDuration(in.By)
	if err != nil || d < 0 || d > 30*24*time.Hour {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, `"by" must be a duration between 0 and 720h, like "90s" or "2h"`)
		return
	}
	now := s.Advance(d)
	writeJSON(w, http.StatusOK, ClockInfo{Now: now, Speed: s.Speed()})
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("request body must be a JSON object of the documented shape: " + err.Error())
	}
	return nil
}

// EventQuery selects events of the log.
type EventQuery struct {
	Since int64     // after this sequence number
	After time.Time // after this simulated time (when not zero)
	// Types are type prefixes (nfs.client. matches nfs.client.stale); an event matches any.
	Types []string
	// Resource is the resource an event is about (an instance id, a zone id), exactly.
	Resource string
	// Limit bounds the answer: the newest Limit matches, or with First the oldest (for paging
	// forward with Since). 0 is all.
	Limit int
	First bool
}

func (q EventQuery) match(e Event) bool {
	if e.Seq <= q.Since || (!q.After.IsZero() && !e.Time.After(q.After)) || (q.Resource != "" && e.Resource != q.Resource) {
		return false
	}
	if len(q.Types) == 0 {
		return true
	}
	for _, p := range q.Types {
		if strings.HasPrefix(e.Type, p) {
			return true
		}
	}
	return false
}

// QueryEvents returns the log entries q selects, oldest first.
func (s *Sim) QueryEvents(q EventQuery) []Event {
	s.begin()
	defer s.mu.Unlock()
	out := []Event{}
	for _, e := range s.st.Events {
		if q.match(e) {
			out = append(out, e)
			if q.First && q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
	}
	if q.Limit > 0 {
		out = lastN(out, q.Limit)
	}
	return out
}

// Events returns the log entries after sequence number since, oldest first, at most limit
// (the newest).
func (s *Sim) Events(since int64, limit int) []Event {
	return s.QueryEvents(EventQuery{Since: since, Limit: limit})
}

func (s *Sim) handleEvents(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := EventQuery{Limit: 500, Resource: v.Get("resource")}
	for key := range v {
		if key != "since" && key != "limit" && key != "first" && key != "type" && key != "resource" {
			writeSimError(w, http.StatusBadRequest, anyops.EINVALID, "unknown parameter "+key+"; known: since, limit, first, type, resource")
			return
		}
	}
	if l, f := v.Get("limit"), v.Get("first"); l != "" || f != "" {
		if l != "" && f != "" {
			writeSimError(w, http.StatusBadRequest, anyops.EINVALID, "give limit (the newest N) or first (the oldest N), not both")
			return
		}
		n, err := strconv.Atoi(l + f)
		if err != nil || n < 1 || n > maxEvents {
			writeSimError(w, http.StatusBadRequest, anyops.EINVALID, "limit and first must be between 1 and 10000")
			return
		}
		q.Limit, q.First = n, f != ""
	}
	if since := v.Get("since"); since != "" {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil {
			t, terr := time.Parse(time.RFC3339, since)
			if terr != nil {
				writeSimError(w, http.StatusBadRequest, anyops.EINVALID, "since must be an event sequence number or an RFC 3339 time")
				return
			}
			q.After = t
		}
		q.Since = n
	}
	for _, t := range strings.Split(v.Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			q.Types = append(q.Types, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": s.QueryEvents(q)})
}

func lastN(e []Event, n int) []Event {
	if len(e) > n {
		return e[len(e)-n:]
	}
	return e
}

// Faults lists the active faults and the scheduled ones.
func (s *Sim) Faults() (active []Fault, scheduled []Fault) {
	s.begin()
	defer s.mu.Unlock()
	active, scheduled = []Fault{}, []Fault{}
	for _, id := range sortedKeys(s.st.Faults) {
		active = append(active, *s.st.Faults[id])
	}
	for _, sf := range s.st.Scheduled {
		f := sf.Fault
		f.Since = sf.At
		scheduled = append(scheduled, f)
	}
	return active, scheduled
}

func (s *Sim) handleListFaults(w http.ResponseWriter, _ *http.Request) {
	active, scheduled := s.Faults()
	writeJSON(w, http.StatusOK, map[string]any{"faults": active, "scheduled": scheduled})
}

func (s *Sim) handleInjectFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := readJSON(r, &f); err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.Error())
		return
	}
	if f.ID != "" || !f.Since.IsZero() {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, "id and since are set by cloudsim")
		return
	}
	out, err := s.InjectFault(f)
	if err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) && aerr.Status == http.StatusNotFound {
			writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, aerr.Message)
			return
		}
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.(*apiError).Message)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// ClearFault ends an active fault; false when there is none with that id.
func (s *Sim) ClearFault(id string) bool {
	now := s.begin()
	defer s.mu.Unlock()
	ok := s.deleteFault(now, id)
	if ok {
		s.markDirty()
	}
	return ok
}

func (s *Sim) handleDeleteFault(w http.ResponseWriter, r *http.Request) {
	if !s.ClearFault(r.PathValue("id")) {
		writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, "no active fault "+r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) handleScenario(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, "cannot read body")
		return
	}
	faults, err := s.LoadScenario(data)
	if err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"scheduled": len(faults)})
}

func (s *Sim) handleHost(w http.ResponseWriter, r *http.Request) {
	s.begin()
	h, ok := s.st.Hosts[r.PathValue("id")]
	var body []byte
	if ok {
		// What the guest sees: device name → volume id, /dev/nvme… on Nitro, /dev/xvd… on Xen.
		devices := map[string]string{}
		for dev, v := range s.devices(h) {
			devices[dev] = v.ID
		}
		// Each DRBD resource with "connected": replicating to at least one peer now.
		// ahead_bytes: the most it holds that a peer lacks; behind_bytes: the most a peer
		// holds that it lacks.
		type drbdView struct {
			*drbdRes
			Connected bool    `json:"connected"`
			Ahead     float64 `json:"ahead_bytes"`
			Behind    float64 `json:"behind_bytes"`
		}
		drbd := map[string]drbdView{}
		for name, r := range h.DRBD {
			drbd[name] = drbdView{r, slices.ContainsFunc(r.Peers, func(c *drbdConn) bool { return c.Connected }), s.drbdAhead(r), s.drbdBehind(r)}
		}
		body, _ = json.Marshal(struct {
			*host
			DRBD    map[string]drbdView `json:"drbd"`
			Devices map[string]string   `json:"devices"`
			TLS     []tlsView           `json:"tls"`
		}{h, drbd, devices, h.tlsState()}) // under the lock; the network write is not
	}
	s.mu.Unlock()
	if !ok {
		writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, "no simulated host for instance "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(body))
}

// VolumeData is what the simulation knows of the data on a volume (GET /_sim/volumes/{id}):
// the blocks written on it, those changed since its last snapshot (what the next one moves),
// those still to load from the snapshot it was created from, and its read rate now.
type VolumeData struct {
	VolumeID        string  `json:"volume_id"`
	WrittenBytes    int64   `json:"written_bytes"`
	ChangedBytes    int64   `json:"changed_bytes"`
	LastSnapshot    string  `json:"last_snapshot,omitempty"`
	UnhydratedBytes int64   `json:"unhydrated_bytes"`
	ReadMBps        float64 `json:"read_mbps"`
	ThroughputMBps  float64 `json:"throughput_mbps"`
}

// Volume reports a volume's data; false when there is no such volume.
func (s *Sim) Volume(id string) (VolumeData, bool) {
	s.begin()
	defer s.mu.Unlock()
	v, ok := s.st.Volumes[id]
	if !ok {
		return VolumeData{}, false
	}
	return VolumeData{VolumeID: v.ID, WrittenBytes: int64(v.Written), ChangedBytes: int64(v.Changed), LastSnapshot: v.LastSnapshot,
		UnhydratedBytes: int64(v.Unhydrated), ReadMBps: s.readRate(v) / mb, ThroughputMBps: s.throughput(v) / mb}, true
}

// FillVolume records gib GiB written on a volume, as the platform would have written it before
// the simulation began (a drill's logs volume that has been in use for months): its written
// blocks and those changed since its last snapshot grow, up to its size.
func (s *Sim) FillVolume(id string, gib float64) (VolumeData, error) {
	now := s.begin()
	v, ok := s.st.Volumes[id]
	if !ok {
		s.mu.Unlock()
		return VolumeData{}, &apiError{Code: anyops.ENOTFOUND, Message: "no volume " + id, Status: http.StatusNotFound}
	}
	v.written(gib * (1 << 30))
	s.event(now, "volume.filled", v.ID, "volume %s: %.1f GiB written before the simulation (%.1f GiB written in all)", v.ID, gib, v.Written/(1<<30))
	s.markDirty()
	s.mu.Unlock()
	d, _ := s.Volume(id)
	return d, nil
}

func (s *Sim) handleVolume(w http.ResponseWriter, r *http.Request) {
	d, ok := s.Volume(r.PathValue("id"))
	if !ok {
		writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, "no volume "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Sim) handleFill(w http.ResponseWriter, r *http.Request) {
	var in struct {
		GiB float64 `json:"gib"`
	}
	if err := readJSON(r, &in); err != nil {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, err.Error())
		return
	}
	if in.GiB <= 0 || in.GiB > 65536 {
		writeSimError(w, http.StatusBadRequest, anyops.EINVALID, `"gib" must be a number of GiB above 0 and at most 65536`)
		return
	}
	d, err := s.FillVolume(r.PathValue("id"), in.GiB)
	if err != nil {
		writeSimError(w, http.StatusNotFound, anyops.ENOTFOUND, err.(*apiError).Message)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
