package sandboxd

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are sandboxd's Prometheus metrics, on a registry of their own so that several
// servers (tests) can live in one process.
type metrics struct {
	registry *prometheus.Registry
	running  prometheus.Gauge
	slots    prometheus.Gauge
	created  prometheus.Counter
	exited   *prometheus.CounterVec
	clients  prometheus.Gauge
	dropped  prometheus.Counter
	refused  *prometheus.CounterVec
}

func newMetrics(slots int) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		running:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "anyops_sandboxd_sandboxes_running", Help: "Sandboxes running now."}),
		slots:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "anyops_sandboxd_slots", Help: "Sandboxes this host runs at most."}),
		created:  prometheus.NewCounter(prometheus.CounterOpts{Name: "anyops_sandboxd_sandboxes_created_total", Help: "Sandboxes started."}),
		exited:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "anyops_sandboxd_sandboxes_exited_total", Help: "Sandboxes ended, by reason."}, []string{"reason"}),
		clients:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "anyops_sandboxd_attach_clients", Help: "WebSocket clients attached now."}),
		dropped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "anyops_sandboxd_clients_dropped_total", Help: "WebSocket clients dropped for falling behind (close code 4008)."}),
		refused:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "anyops_sandboxd_requests_refused_total", Help: "Requests answered with a 4xx, by error code."}, []string{"code"}),
	}
	m.slots.Set(float64(slots))
	m.registry.MustRegister(m.running, m.slots, m.created, m.exited, m.clients, m.dropped, m.refused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
