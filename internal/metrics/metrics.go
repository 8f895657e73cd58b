// Package metrics exposes baton's Prometheus metrics. Event metrics
// (transitions, takeover durations) are recorded as they happen; the rest
// is read from the daemon's status at scrape time.
package metrics

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/httpserve"
	"github.com/batonha/baton/internal/store"
)

// Roles lists the role names, for the one-hot role gauge.
var roles = []string{"INIT", "STANDBY", "ACTIVE", "FAULT", "MAINTENANCE"}

// Metrics holds the registry and the event metrics.
type Metrics struct {
	reg         *prometheus.Registry
	transitions *prometheus.CounterVec
	takeover    *prometheus.HistogramVec
	reasserts   *prometheus.CounterVec
	listeners   *listenerCollector
}

// New registers baton's metrics; status is read at every scrape.
func New(status func() api.Status) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_transitions_total", Help: "Role transitions by from, to and reason.",
		}, []string{"from", "to", "reason"}),
		takeover: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "baton_takeover_seconds",
			Help:    "Time from the role decision until each action was done (action=\"all\" for the whole pipeline).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"op", "action"}),
		reasserts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_reassertions_total", Help: "Times the active node re-ran every action's announce-and-verify at once, by cause.",
		}, []string{"cause"}),
		listeners: &listenerCollector{dropped: map[string]func() uint64{}},
	}
	reg.MustRegister(m.transitions, m.takeover, m.reasserts, m.listeners, &statusCollector{status: status},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Listen binds the metrics listener (listen "off" or "": none) and
// returns its server: baton's limits, and the bearer token of tokenFile
// when one is set.
func Listen(listen, tokenFile string, h http.Handler, log *slog.Logger) (*http.Server, *httpserve.Limited, error) {
	if listen == "" || listen == "off" {
		return nil, nil, nil
	}
	token := ""
	if tokenFile != "" {
		b, err := store.ReadSecret(tokenFile, func(w string) { log.Warn("metrics.token_file: " + w) })
		if err != nil {
			return nil, nil, fmt.Errorf("reading metrics token (metrics.token_file): %w", err)
		}
		if token = strings.TrimSpace(string(b)); len(token) < 16 {
			return nil, nil, fmt.Errorf("metrics token in %s is shorter than 16 characters", tokenFile)
		}
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, fmt.Errorf("binding metrics listener %s (metrics.listen): %w", listen, err)
	}
	return httpserve.New(httpserve.Bearer(token, h)), httpserve.Limit(l, 0), nil
}

// CountDrops exports dropped (a listener's count of connections it closed
// at once) as baton_listener_dropped_total{listener=name}. Call it before
// serving; a second call for a name replaces the first.
func (m *Metrics) CountDrops(name string, dropped func() uint64) {
	m.listeners.mu.Lock()
	defer m.listeners.mu.Unlock()
	m.listeners.dropped[name] = dropped
}

var descListenerDrops = prometheus.NewDesc("baton_listener_dropped_total",
	"Connections a listener closed at once: its cap of concurrent connections or TLS handshakes reached, or a handshake refused.",
	[]string{"listener"}, nil)

// listenerCollector reads every listener's drop count at scrape time.
type listenerCollector struct {
	mu      sync.Mutex
	dropped map[string]func() uint64
}

func (c *listenerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descListenerDrops }

func (c *listenerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, f := range c.dropped {
		ch <- prometheus.MustNewConstMetric(descListenerDrops, prometheus.CounterValue, float64(f()), name)
	}
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry, for tests and for other subsystems' metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Transition counts a role change.
func (m *Metrics) Transition(from, to, reason string) {
	m.transitions.WithLabelValues(from, to, reason).Inc()
}

// Reassertion counts a re-assertion of the active role.
func (m *Metrics) Reassertion(cause string) {
	m.reasserts.WithLabelValues(cause).Inc()
}

// Step records an action finished d after the role decision.
func (m *Metrics) Step(op, action string, d time.Duration) {
	m.takeover.WithLabelValues(op, action).Observe(d.Seconds())
}

var (
	descRole      = prometheus.NewDesc("baton_role", "1 for the role this node holds.", []string{"role"}, nil)
	descTerm      = prometheus.NewDesc("baton_term", "Current role term.", nil, nil)
	descHealthy   = prometheus.NewDesc("baton_healthy", "1 when every local check passes.", nil, nil)
	descMaint     = prometheus.NewDesc("baton_maintenance", "1 in maintenance mode.", nil, nil)
	descPeerAlive = prometheus.NewDesc("baton_peer_alive", "1 while any path to the peer is up.", []string{"peer"}, nil)
	descPathUp    = prometheus.NewDesc("baton_heartbeat_path_up", "1 while the path is up.", []string{"path", "kind"}, nil)
	descPathRTT   = prometheus.NewDesc("baton_heartbeat_rtt_seconds", "Last round-trip time on the path.", []string{"path", "kind"}, nil)
	descPathSent  = prometheus.NewDesc("baton_heartbeat_sent_total", "Heartbeats sent on the path.", []string{"path", "kind"}, nil)
	descPathRecv  = prometheus.NewDesc("baton_heartbeat_received_total", "Valid heartbeats received on the path.", []string{"path", "kind"}, nil)
	descDrops     = prometheus.NewDesc("baton_heartbeat_dropped_total", "Heartbeats dropped, by reason.", []string{"reason"}, nil)
	descProbe     = prometheus.NewDesc("baton_probe_requests_total", "Load-balancer probe requests by answer code.", []string{"code"}, nil)
	descProbeConn = prometheus.NewDesc("baton_probe_connected", "1 while a load balancer probed within the window.", nil, nil)
	descCheck     = prometheus.NewDesc("baton_check_healthy", "1 while the local check passes.", []string{"check", "type"}, nil)
	descAction    = prometheus.NewDesc("baton_action_ok", "1 when the action's last run succeeded.", []string{"action", "op"}, nil)
	descLease     = prometheus.NewDesc("baton_witness_holding", "1 while this node holds the witness lease.", []string{"type"}, nil)
	descLeaseTok  = prometheus.NewDesc("baton_witness_token", "Fencing token of the lease last seen.", nil, nil)
	descLeaseLeft = prometheus.NewDesc("baton_witness_time_left_seconds", "Time until this node must step down unless it renews.", nil, nil)
	descLeaseFail = prometheus.NewDesc("baton_witness_renew_failures_total", "Failed lease renewals.", nil, nil)
	descByPeer    = prometheus.NewDesc("baton_witness_holding_by_peer", "1 while this node is active without the lease (the witness unreachable) by its peer's agreement.", nil, nil)
	descHookDrops = prometheus.NewDesc("baton_hooks_dropped_total", "Transitions whose hooks did not run because the hook queue was full.", nil, nil)
)

type statusCollector struct{ status func() api.Status }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRole, descTerm, descHealthy, descMaint, descPeerAlive, descPathUp,
		descPathRTT, descPathSent, descPathRecv, descDrops, descProbe, descProbeConn, descCheck, descAction,
		descLease, descLeaseTok, descLeaseLeft, descLeaseFail, descByPeer, descHookDrops} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	for _, r := range roles {
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, b2f(st.Role == r), r)
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b2f(st.Healthy))
	ch <- prometheus.MustNewConstMetric(descMaint, prometheus.GaugeValue, b2f(st.Maintenance))
	ch <- prometheus.MustNewConstMetric(descPeerAlive, prometheus.GaugeValue, b2f(st.Peer.Alive), st.Peer.Name)
	for _, p := range st.Peer.Paths {
		ch <- prometheus.MustNewConstMetric(descPathUp, prometheus.GaugeValue, b2f(p.Up), p.Name, p.Kind)
		ch <- prometheus.MustNewConstMetric(descPathRTT, prometheus.GaugeValue, p.RTTMillis/1000, p.Name, p.Kind)
		ch <- prometheus.MustNewConstMetric(descPathSent, prometheus.CounterValue, float64(p.Sent), p.Name, p.Kind)
		ch <- prometheus.MustNewConstMetric(descPathRecv, prometheus.CounterValue, float64(p.Received), p.Name, p.Kind)
	}
	for reason, n := range st.Peer.Drops {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(n), reason)
	}
	if st.Probe != nil {
		ch <- prometheus.MustNewConstMetric(descProbe, prometheus.CounterValue, float64(st.Probe.Count200), "200")
		ch <- prometheus.MustNewConstMetric(descProbe, prometheus.CounterValue, float64(st.Probe.Count503), "503")
		ch <- prometheus.MustNewConstMetric(descProbeConn, prometheus.GaugeValue, b2f(st.Probe.State == "connected"))
	}
	ch <- prometheus.MustNewConstMetric(descHookDrops, prometheus.CounterValue, float64(st.HooksDropped))
	for _, k := range st.Checks {
		ch <- prometheus.MustNewConstMetric(descCheck, prometheus.GaugeValue, b2f(k.Healthy), k.Name, k.Type)
	}
	for _, a := range st.Actions {
		ch <- prometheus.MustNewConstMetric(descAction, prometheus.GaugeValue, b2f(a.OK), a.Name, a.Op)
	}
	if w := st.Witness; w != nil {
		ch <- prometheus.MustNewConstMetric(descLease, prometheus.GaugeValue, b2f(w.Holding), w.Type)
		ch <- prometheus.MustNewConstMetric(descLeaseTok, prometheus.GaugeValue, float64(w.Token))
		ch <- prometheus.MustNewConstMetric(descLeaseLeft, prometheus.GaugeValue, w.TimeLeftMs/1000)
		ch <- prometheus.MustNewConstMetric(descLeaseFail, prometheus.CounterValue, float64(w.RenewFailures))
		ch <- prometheus.MustNewConstMetric(descByPeer, prometheus.GaugeValue, b2f(w.HoldingByPeer))
	}
}
