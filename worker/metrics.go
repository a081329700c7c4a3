package worker

import (
	"maps"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// Metrics turns the Temporal SDK's metrics (workflow and activity task counts and latencies,
// poll results, slots, requests to the server) into Prometheus metrics: it is both the
// client's MetricsHandler and a prometheus.Collector to register where /metrics is served.
//
// The SDK tags one metric name with different tag sets in different places, which a
// Prometheus metric family may not have; at collection each name gets the union of the tag
// keys it was used with, the missing ones empty.
type Metrics struct {
	mu     sync.Mutex
	series map[string]*series // by name and sorted tags
}

type seriesKind int

const (
	counterSeries seriesKind = iota
	gaugeSeries
	timerSeries
)

type series struct {
	name    string
	kind    seriesKind
	labels  map[string]string
	value   float64  // counter total or gauge value
	buckets []uint64 // timer: counts per timerBuckets bound
	count   uint64
	sum     float64 // seconds
}

// timerBuckets are the histogram bounds of every timer, in seconds: from a local activity
// (milliseconds) to a long poll (a minute).
var timerBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics returns an empty Metrics.
func NewMetrics() *Metrics { return &Metrics{series: map[string]*series{}} }

// Handler is the SDK-facing side, for client.Options.MetricsHandler.
func (m *Metrics) Handler() client.MetricsHandler { return handler{m: m} }

type handler struct {
	m    *Metrics
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	maps.Copy(merged, h.tags)
	maps.Copy(merged, tags)
	return handler{m: h.m, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter {
	return counter{h.m.get(name, counterSeries, h.tags), h.m}
}

func (h handler) Gauge(name string) client.MetricsGauge {
	return gauge{h.m.get(name, gaugeSeries, h.tags), h.m}
}

func (h handler) Timer(name string) client.MetricsTimer {
	return timer{h.m.get(name, timerSeries, h.tags), h.m}
}

type counter struct {
	s *series
	m *Metrics
}

func (c counter) Inc(n int64) {
	c.m.mu.Lock()
	c.s.value += float64(n)
	c.m.mu.Unlock()
}

type gauge struct {
	s *series
	m *Metrics
}

func (g gauge) Update(v float64) {
	g.m.mu.Lock()
	g.s.value = v
	g.m.mu.Unlock()
}

type timer struct {
	s *series
	m *Metrics
}

func (t timer) Record(d time.Duration) {
	sec := d.Seconds()
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	t.s.count++
	t.s.sum += sec
	for i, bound := range timerBuckets {
		if sec <= bound {
			t.s.buckets[i]++
		}
	}
}

var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func promName(name string) string {
	name = invalidNameChars.ReplaceAllString(name, "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "_" + name
	}
	return name
}

// get returns the series of name and tags, creating it on first use.
func (m *Metrics) get(name string, kind seriesKind, tags map[string]string) *series {
	name = promName(name)
	labels := make(map[string]string, len(tags))
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		k = promName(k)
		labels[k] = v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + labels[k])
	}
	key := b.String()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.series[key]; ok {
		return s
	}
	s := &series{name: name, kind: kind, labels: labels}
	if kind == timerSeries {
		s.buckets = make([]uint64, len(timerBuckets))
	}
	m.series[key] = s
	return s
}

// Describe sends nothing: the metrics appear as the SDK creates them (an unchecked collector).
func (m *Metrics) Describe(chan<- *prometheus.Desc) {}

// Collect emits every series, each name with the union of its label keys.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byName := map[string][]*series{}
	for _, s := range m.series {
		byName[s.name] = append(byName[s.name], s)
	}
	for name, all := range byName {
		keySet := map[string]bool{}
		for _, s := range all {
			for k := range s.labels {
				keySet[k] = true
			}
		}
		keys := make([]string, 0, len(keySet))
		for k := range keySet {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		kind := all[0].kind
		metricName := name
		if kind == timerSeries && !strings.HasSuffix(name, "_seconds") {
			metricName = name + "_seconds"
		}
		desc := prometheus.NewDesc(metricName, "Temporal SDK metric "+name+".", keys, nil)
		for _, s := range all {
			if s.kind != kind {
				continue // one name used as two kinds: keep the first kind's series
			}
			values := make([]string, len(keys))
			for i, k := range keys {
				values[i] = s.labels[k]
			}
			switch s.kind {
			case counterSeries:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, s.value, values...)
			case gaugeSeries:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, s.value, values...)
			case timerSeries:
				buckets := make(map[float64]uint64, len(timerBuckets))
				for i, bound := range timerBuckets {
					buckets[bound] = s.buckets[i]
				}
				ch <- prometheus.MustNewConstHistogram(desc, s.count, s.sum, buckets, values...)
			}
		}
	}
}
