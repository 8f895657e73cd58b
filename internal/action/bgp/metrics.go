package bgp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the sessions and announcements as Prometheus
// metrics, read from Status at scrape time.
func (b *BGP) Collector() prometheus.Collector { return &collector{b: b} }

type collector struct{ b *BGP }

var (
	descAnnouncing = prometheus.NewDesc("baton_bgp_announcing", "1 while this node announces its prefixes.", nil, nil)
	descAnnounced  = prometheus.NewDesc("baton_bgp_prefixes_announced", "Prefixes announced now.", nil, nil)
	descUp         = prometheus.NewDesc("baton_bgp_session_established", "1 while the BGP session to the peer is established.", []string{"peer"}, nil)
	descReceived   = prometheus.NewDesc("baton_bgp_prefixes_received", "Prefixes received from the peer.", []string{"peer"}, nil)
	descAdvertised = prometheus.NewDesc("baton_bgp_prefixes_advertised", "Prefixes advertised to the peer.", []string{"peer"}, nil)
	descFlaps      = prometheus.NewDesc("baton_bgp_session_flaps_total", "Times the session left the established state.", []string{"peer"}, nil)
	descBFD        = prometheus.NewDesc("baton_bgp_bfd_enabled", "1 while BFD runs on the session.", []string{"peer"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAnnouncing, descAnnounced, descUp, descReceived, descAdvertised, descFlaps, descBFD} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Status()
	ch <- prometheus.MustNewConstMetric(descAnnouncing, prometheus.GaugeValue, b2f(len(st.Announced) > 0))
	ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, float64(len(st.Announced)))
	for _, p := range st.Peers {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(p.Established), p.Address)
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.GaugeValue, float64(p.Received), p.Address)
		ch <- prometheus.MustNewConstMetric(descAdvertised, prometheus.GaugeValue, float64(p.Advertised), p.Address)
		ch <- prometheus.MustNewConstMetric(descFlaps, prometheus.CounterValue, float64(p.Flaps), p.Address)
		ch <- prometheus.MustNewConstMetric(descBFD, prometheus.GaugeValue, b2f(p.BFD), p.Address)
	}
}
