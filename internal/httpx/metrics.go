package httpx

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Metrics holds the request metrics of one server instance in its own
// registry (never the global default registry: tests run many servers in
// one process).
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates a registry with the Go and process collectors and the
// HTTP request metrics:
//
//	fhirguard_http_requests_total{interaction, code}
//	fhirguard_http_request_duration_seconds{interaction, code}
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirguard_http_requests_total",
			Help: "HTTP requests served, by FHIR interaction and status code.",
		}, []string{"interaction", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fhirguard_http_request_duration_seconds",
			Help:    "HTTP request duration, by FHIR interaction and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"interaction", "code"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.duration,
	)
	return m
}

// Registry returns the instance's registry so other areas can register
// their own collectors (e.g. policy decisions).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format, without
// go_info (it names the Go version; RESIL-08).
func (m *Metrics) Handler() http.Handler {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := m.reg.Gather()
		out := mfs[:0]
		for _, mf := range mfs {
			if mf.GetName() != "go_info" {
				out = append(out, mf)
			}
		}
		return out, err
	})
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{Registry: m.reg})
}

// observe records one finished request.
func (m *Metrics) observe(interaction string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(interaction, code).Inc()
	m.duration.WithLabelValues(interaction, code).Observe(d.Seconds())
}
