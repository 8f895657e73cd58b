package sessionsync

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// Status is what `baton status --json` shows under subsystems.sessions
// and GET /v1/sessions answers.
type Status struct {
	Strategy  string `json:"strategy"`
	Peer      string `json:"peer"`
	Active    bool   `json:"active"`    // this node is the source
	Connected bool   `json:"connected"` // outbound stream to the peer is up
	Inbound   bool   `json:"inbound"`   // the peer's stream to us is up
	Held      int    `json:"held"`      // the peer's connections held here
	Injecting int    `json:"injecting"` // held changes not yet written to the kernel (inject)
	Pending   int    `json:"pending"`   // changes not yet sent
	Inflight  int    `json:"inflight"`  // batches sent, not yet acknowledged

	LocalEvents    uint64  `json:"local_events"`
	Sent           uint64  `json:"sent"`
	Received       uint64  `json:"received"`
	SentPerSec     float64 `json:"sent_per_sec"`
	ReceivedPerSec float64 `json:"received_per_sec"`
	LagMs          float64 `json:"lag_ms"` // age of the oldest unacknowledged batch
	AckRTTMs       float64 `json:"ack_rtt_ms"`

	ResyncsSent     uint64  `json:"resyncs_sent"`
	ResyncsReceived uint64  `json:"resyncs_received"`
	LastResyncN     int     `json:"last_resync_entries"`
	LastResyncMs    float64 `json:"last_resync_ms"`
	Overruns        uint64  `json:"overruns"`
	Commits         uint64  `json:"commits"`
	LastCommitMs    float64 `json:"last_commit_ms"`
	LastCommitN     int     `json:"last_commit_entries"`
	Filtered        uint64  `json:"filtered"`
	MaxEntries      int     `json:"max_entries"`         // most of the peer's connections held
	DroppedFiltered uint64  `json:"dropped_filtered"`    // the peer's, outside this node's filter
	DroppedFull     uint64  `json:"dropped_max_entries"` // the peer's, over max_entries
	DecodeErrors    uint64  `json:"decode_errors"`
	ApplyFailed     uint64  `json:"apply_failed"`
	StaleDeleted    uint64  `json:"stale_deleted"`
	Refreshed       uint64  `json:"refreshed"`
	LastError       string  `json:"last_error,omitempty"`
	BatchesSent     uint64  `json:"batches_sent"`
	BatchesReceived uint64  `json:"batches_received"`
}

// Status reports counts, rates and lag.
func (s *Syncer) Status() Status {
	now := s.clk.Now()
	st := Status{Strategy: s.cfg.Strategy, Peer: s.opt.Peer, Active: s.active.Load()}
	s.smu.Lock()
	st.Connected, st.Pending, st.Inflight = s.connected, s.pending.len(), len(s.inflight)
	if len(s.inflight) > 0 {
		st.LagMs = float64(now.Sub(s.inflight[0].sent).Microseconds()) / 1000
	}
	s.smu.Unlock()
	s.hmu.Lock()
	st.Held, st.Injecting, st.Inbound = len(s.held), s.queue.len()+len(s.handBack), s.inbound != nil
	s.hmu.Unlock()
	s.stats.mu.Lock()
	x := &s.stats
	st.LocalEvents, st.Sent, st.Received = s.localEvents.Load(), x.sent, x.recv
	st.SentPerSec, st.ReceivedPerSec = x.rateSent, x.rateRecv
	st.AckRTTMs = float64(x.ackRTT.Microseconds()) / 1000
	st.ResyncsSent, st.ResyncsReceived, st.LastResyncN, st.LastResyncMs = x.sentResyncs, x.recvResyncs, x.lastResyncN, x.resyncMs
	st.Overruns, st.Commits, st.LastCommitN = x.overruns, x.commits, x.lastCommitN
	st.LastCommitMs = float64(x.lastCommit.Microseconds()) / 1000
	st.Filtered, st.DecodeErrors, st.ApplyFailed = s.filteredN.Load(), x.decodeErrs, x.applyFailed
	st.StaleDeleted, st.Refreshed, st.LastError = x.staleDeleted, x.refreshed, x.lastErr
	st.MaxEntries, st.DroppedFiltered, st.DroppedFull = s.maxHeld, x.recvFiltered, x.recvFull
	st.BatchesSent, st.BatchesReceived = x.sentBatches, x.recvBatches
	s.stats.mu.Unlock()
	return st
}

// Query selects connections for a troubleshooting dump.
type Query struct {
	Proto string       // tcp, udp, ... ("" = any)
	Addr  netip.Prefix // any address of either tuple in it (invalid = any)
	Port  int          // any port of either tuple (0 = any)
	Limit int          // at most this many (0 = 1000)
}

// Match reports whether e is selected.
func (q Query) Match(e *conntrack.Entry) bool {
	if q.Proto != "" && conntrack.ProtoName(e.Proto) != q.Proto {
		return false
	}
	if q.Addr.IsValid() {
		ok := false
		for _, a := range []netip.Addr{e.Orig.Src, e.Orig.Dst, e.Reply.Src, e.Reply.Dst} {
			if q.Addr.Contains(a) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if q.Port != 0 {
		p := uint16(q.Port)
		if e.Orig.SrcPort != p && e.Orig.DstPort != p && e.Reply.SrcPort != p && e.Reply.DstPort != p {
			return false
		}
	}
	return true
}

// Conn is one connection in a dump, as the API shows it.
type Conn struct {
	Proto    string `json:"proto"`
	Zone     uint16 `json:"zone,omitempty"`
	Orig     string `json:"orig"`
	Reply    string `json:"reply"`
	SNAT     string `json:"snat,omitempty"`
	DNAT     string `json:"dnat,omitempty"`
	State    string `json:"state,omitempty"`
	Timeout  uint32 `json:"timeout"`
	Mark     uint32 `json:"mark,omitempty"`
	Injected bool   `json:"injected,omitempty"`
}

func connOf(e *conntrack.Entry, injected bool) Conn {
	c := Conn{Proto: conntrack.ProtoName(e.Proto), Zone: e.Zone, Orig: e.Orig.String(), Reply: e.Reply.String(),
		Timeout: e.Timeout, Mark: e.Mark, Injected: injected}
	if a, p, ok := e.SNAT(); ok {
		c.SNAT = netip.AddrPortFrom(a, p).String()
	}
	if a, p, ok := e.DNAT(); ok {
		c.DNAT = netip.AddrPortFrom(a, p).String()
	}
	if e.Proto == conntrack.ProtoTCP {
		c.State = conntrack.TCPStateName(e.TCPState)
	}
	return c
}

// Dump is the answer of GET /v1/sessions/entries.
type Dump struct {
	Source  string `json:"source"` // held | kernel
	Total   int    `json:"total"`  // matching connections
	Entries []Conn `json:"entries"`
}

// Held lists the held connections q selects, sorted.
func (s *Syncer) Held(q Query) Dump {
	s.hmu.Lock()
	var all []Conn
	for _, h := range s.held {
		e := h.p.entry()
		if q.Match(&e) {
			all = append(all, connOf(&e, h.injected))
		}
	}
	s.hmu.Unlock()
	return limitSorted("held", all, q.Limit)
}

func limitSorted(src string, all []Conn, limit int) Dump {
	sort.Slice(all, func(i, j int) bool { return all[i].Orig < all[j].Orig })
	if limit <= 0 {
		limit = 1000
	}
	d := Dump{Source: src, Total: len(all), Entries: all}
	if len(all) > limit {
		d.Entries = all[:limit]
	}
	if d.Entries == nil {
		d.Entries = []Conn{}
	}
	return d
}

// ParseQuery reads a query from URL parameters proto, addr, port, limit.
func ParseQuery(get func(string) string) (Query, error) {
	var q Query
	q.Proto = get("proto")
	if q.Proto != "" {
		if _, ok := conntrack.ProtoNumber(q.Proto); !ok {
			return q, errorf("unknown protocol %q", q.Proto)
		}
	}
	if a := get("addr"); a != "" {
		p, err := parsePrefix(a)
		if err != nil {
			return q, err
		}
		q.Addr = p
	}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"port", &q.Port, 65535}, {"limit", &q.Limit, 1 << 30}} {
		if v := get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > f.max {
				return q, errorf("%s: want a number 0..%d", f.name, f.max)
			}
			*f.dst = n
		}
	}
	return q, nil
}

// Routes registers GET /v1/sessions (status) and GET
// /v1/sessions/entries?source=held|kernel&proto=&addr=&port=&limit=.
func (s *Syncer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /v1/sessions/entries", func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.Query().Get)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		switch src := r.URL.Query().Get("source"); src {
		case "", "held":
			writeJSON(w, http.StatusOK, s.Held(q))
		case "kernel":
			entries, err := s.opt.Table.Dump(r.Context())
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
				return
			}
			var all []Conn
			for i := range entries {
				if q.Match(&entries[i]) {
					all = append(all, connOf(&entries[i], false))
				}
			}
			writeJSON(w, http.StatusOK, limitSorted("kernel", all, q.Limit))
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "source must be held or kernel"})
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Collector exports the status as Prometheus metrics (baton_sessions_*).
func (s *Syncer) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Syncer }

var (
	descHeld     = prometheus.NewDesc("baton_sessions_held", "Connections of the peer held here.", []string{"peer"}, nil)
	descInject   = prometheus.NewDesc("baton_sessions_injecting", "Held changes not yet written to the kernel (inject strategy).", nil, nil)
	descEvents   = prometheus.NewDesc("baton_sessions_changes_total", "Connection changes synced, by direction.", []string{"direction"}, nil)
	descRate     = prometheus.NewDesc("baton_sessions_changes_per_second", "Connection changes per second, by direction.", []string{"direction"}, nil)
	descLag      = prometheus.NewDesc("baton_sessions_lag_seconds", "Age of the oldest unacknowledged batch.", nil, nil)
	descResyncs  = prometheus.NewDesc("baton_sessions_resyncs_total", "Full resyncs, by direction.", []string{"direction"}, nil)
	descCommits  = prometheus.NewDesc("baton_sessions_commits_total", "Commits of held connections.", nil, nil)
	descCommitD  = prometheus.NewDesc("baton_sessions_last_commit_seconds", "Duration of the last commit.", nil, nil)
	descCommitN  = prometheus.NewDesc("baton_sessions_last_commit_entries", "Connections written by the last commit.", nil, nil)
	descDrops    = prometheus.NewDesc("baton_sessions_dropped_total", "Changes dropped or refused, by reason.", []string{"reason"}, nil)
	descOverruns = prometheus.NewDesc("baton_sessions_overruns_total", "Conntrack event losses (each followed by a resync).", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeld, descInject, descEvents, descRate, descLag, descResyncs, descCommits, descCommitD, descCommitN, descDrops, descOverruns} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status()
	g, ct := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(descHeld, g, float64(st.Held), st.Peer)
	ch <- prometheus.MustNewConstMetric(descInject, g, float64(st.Injecting))
	ch <- prometheus.MustNewConstMetric(descEvents, ct, float64(st.Sent), "sent")
	ch <- prometheus.MustNewConstMetric(descEvents, ct, float64(st.Received), "received")
	ch <- prometheus.MustNewConstMetric(descRate, g, st.SentPerSec, "sent")
	ch <- prometheus.MustNewConstMetric(descRate, g, st.ReceivedPerSec, "received")
	ch <- prometheus.MustNewConstMetric(descLag, g, st.LagMs/1000)
	ch <- prometheus.MustNewConstMetric(descResyncs, ct, float64(st.ResyncsSent), "sent")
	ch <- prometheus.MustNewConstMetric(descResyncs, ct, float64(st.ResyncsReceived), "received")
	ch <- prometheus.MustNewConstMetric(descCommits, ct, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(descCommitD, g, st.LastCommitMs/1000)
	ch <- prometheus.MustNewConstMetric(descCommitN, g, float64(st.LastCommitN))
	ch <- prometheus.MustNewConstMetric(descDrops, ct, float64(st.DecodeErrors), "decode")
	ch <- prometheus.MustNewConstMetric(descDrops, ct, float64(st.ApplyFailed), "kernel_refused")
	ch <- prometheus.MustNewConstMetric(descDrops, ct, float64(st.DroppedFiltered), "filtered")
	ch <- prometheus.MustNewConstMetric(descDrops, ct, float64(st.DroppedFull), "max_entries")
	ch <- prometheus.MustNewConstMetric(descOverruns, ct, float64(st.Overruns))
}

type queryError string

func (e queryError) Error() string { return string(e) }

func errorf(format string, a ...any) error { return queryError(fmt.Sprintf(format, a...)) }
