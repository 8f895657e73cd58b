package configsync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series of config sync; a nil *metrics
// records nothing.
type metrics struct {
	appliedC    *prometheus.CounterVec
	conflictsC  *prometheus.CounterVec
	failuresC   *prometheus.CounterVec
	propagation *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, status func() Status) (*metrics, error) {
	m := &metrics{
		appliedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_configsync_applied_total", Help: "Files received from the peer and put in place.",
		}, []string{"set"}),
		conflictsC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_configsync_conflicts_total", Help: "Concurrent edits resolved (the loser kept beside the file).",
		}, []string{"set"}),
		failuresC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_configsync_failures_total", Help: "Files refused, failed to apply, or unreadable.",
		}, []string{"set", "kind"}),
		propagation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "baton_configsync_propagation_seconds",
			Help:    "From a local edit being seen to the peer acknowledging it in place.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 120},
		}, []string{"set"}),
	}
	cs := []prometheus.Collector{m.appliedC, m.conflictsC, m.failuresC, m.propagation, &statusCollector{status: status}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) applied(set string) {
	if m != nil {
		m.appliedC.WithLabelValues(set).Inc()
	}
}

func (m *metrics) conflict(set string) {
	if m != nil {
		m.conflictsC.WithLabelValues(set).Inc()
	}
}

func (m *metrics) failure(set, kind string) {
	if m != nil {
		m.failuresC.WithLabelValues(set, kind).Inc()
	}
}

func (m *metrics) propagated(set string, d time.Duration) {
	if m != nil {
		m.propagation.WithLabelValues(set).Observe(d.Seconds())
	}
}

var (
	descFiles    = prometheus.NewDesc("baton_configsync_files", "Files synced in a set.", []string{"set"}, nil)
	descPending  = prometheus.NewDesc("baton_configsync_pending", "Files whose version the peer does not hold yet.", []string{"set"}, nil)
	descLastSync = prometheus.NewDesc("baton_configsync_last_sync_timestamp_seconds", "Last complete comparison with the peer.", []string{"set"}, nil)
	descPeerUp   = prometheus.NewDesc("baton_configsync_peer_connected", "1 when the sync stream to the peer is up.", nil, nil)
)

type statusCollector struct{ status func() Status }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descFiles
	ch <- descPending
	ch <- descLastSync
	ch <- descPeerUp
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	up := 0.0
	if st.Connected {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up)
	for _, s := range st.Sets {
		ch <- prometheus.MustNewConstMetric(descFiles, prometheus.GaugeValue, float64(s.Files), s.Name)
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending), s.Name)
		if !s.LastSync.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastSync, prometheus.GaugeValue, float64(s.LastSync.UnixNano())/1e9, s.Name)
		}
	}
}
