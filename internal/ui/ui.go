// Package ui is baton's status page: one server-rendered HTML page (it
// shows the state without JavaScript) that a small script keeps live from
// the API's event stream. Everything is embedded: no CDN, no build step.
package ui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/batonha/baton/internal/api"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Options configure the page.
type Options struct {
	// Status returns the node's status (the daemon's api.Backend.Status).
	Status func() api.Status
	// Peer returns the peer's own status as fetched over the peer link,
	// when, and the error of the last attempt (peerview.View.Get); nil
	// leaves the peer's view out.
	Peer func(ctx context.Context) (api.Status, time.Time, error)
	// ReadOnly hides the commands (api.read_only).
	ReadOnly bool
	Logger   *slog.Logger
	// Now is the clock for relative times (tests); time.Now by default.
	Now func() time.Time
}

// Page serves the status page.
type Page struct {
	opt  Options
	tmpl *template.Template
}

// New parses the embedded templates.
func New(opt Options) (*Page, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("").Funcs(funcs(opt.Now)).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing the status page templates: %w", err)
	}
	return &Page{opt: opt, tmpl: t}, nil
}

// Register adds the page's routes: / (to /ui/), /ui/, /ui/fragment (the
// live part, for the script), /ui/login and /ui/static/.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) { p.render(w, r, "page") })
	mux.HandleFunc("GET /ui/fragment", func(w http.ResponseWriter, r *http.Request) { p.render(w, r, "main") })
	mux.HandleFunc("GET /ui/login", func(w http.ResponseWriter, r *http.Request) {
		p.execute(w, "login", map[string]any{"Failed": r.URL.Query().Get("failed") != ""})
	})
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(sub)))
}

// peerWait bounds how long a render waits for the peer's answer: a page
// shows what it has rather than wait for a peer that is gone.
const peerWait = 300 * time.Millisecond

func (p *Page) render(w http.ResponseWriter, r *http.Request, name string) {
	v := p.view(p.opt.Status())
	if p.opt.Peer != nil {
		ctx, cancel := context.WithTimeout(r.Context(), peerWait)
		st, at, err := p.opt.Peer(ctx)
		cancel()
		v.PeerView = p.peerView(st, at, err)
	}
	p.execute(w, name, v)
}

func (p *Page) execute(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		p.opt.Logger.Error("rendering the status page", "template", name, "err", err)
		http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b.Bytes())
}

// view is what the templates see.
type view struct {
	S          api.Status
	Now        time.Time
	ReadOnly   bool
	Paths      pathsView
	Timeline   timelineView
	Subsystems []subsystem
	// PeerView is the peer's own status through the peer link; nil when
	// the page has no peer link to ask.
	PeerView *peerView
}

// pathsView is a table of heartbeat paths with the drops by reason.
type pathsView struct {
	ID    string
	Paths []api.Path
	Drops []kv
}

// timelineView is a failover timeline, newest first.
type timelineView struct {
	ID      string
	Entries []entry
}

// peerView is the peer's status as the peer itself reports it.
type peerView struct {
	S        api.Status
	At       time.Time // when it was fetched; zero when never
	Err      string
	Paths    pathsView
	Timeline timelineView
}

type kv struct {
	K string
	V string
}

type subsystem struct {
	Name   string
	Fields []kv
}

// entry is one transition of the timeline with its waterfall.
type entry struct {
	api.Transition
	Takeover bool
	Failed   bool
	Retried  bool
	// DetectWidth is the detection's bar: from the detection to the
	// decision, in percent of the run.
	DetectWidth float64
	Bars        []bar
}

// bar is one step of a waterfall, placed in percent of the run, with
// its parts (route tables, addresses) when it has several or one of
// them failed or was retried.
type bar struct {
	api.Step
	Left, Width float64
	Retried     bool
	Parts       []partBar
}

// partBar is one target of a step, placed like its step.
type partBar struct {
	api.StepPart
	Left, Width float64
	Retried     bool
}

func (p *Page) view(st api.Status) view {
	return view{S: st, Now: p.opt.Now(), ReadOnly: p.opt.ReadOnly,
		Paths:    paths("paths", st),
		Timeline: timeline("timeline", st.Transitions),
		Subsystems: func() (out []subsystem) {
			for _, name := range sortedKeys(st.Subsystems) {
				out = append(out, subsystem{Name: name, Fields: fields(name, st.Subsystems[name])})
			}
			return out
		}(),
	}
}

func (p *Page) peerView(st api.Status, at time.Time, err error) *peerView {
	v := &peerView{S: st, At: at, Paths: paths("peer-paths", st), Timeline: timeline("peer-timeline", st.Transitions)}
	if err != nil {
		v.Err = err.Error()
	}
	return v
}

func paths(id string, st api.Status) pathsView {
	v := pathsView{ID: id, Paths: st.Peer.Paths}
	for _, k := range sortedKeys(st.Peer.Drops) {
		v.Drops = append(v.Drops, kv{k, fmt.Sprint(st.Peer.Drops[k])})
	}
	return v
}

func timeline(id string, trs []api.Transition) timelineView {
	v := timelineView{ID: id}
	for i := len(trs) - 1; i >= 0; i-- {
		v.Entries = append(v.Entries, waterfall(trs[i]))
	}
	return v
}

// waterfall places the steps of tr, and their parts, on one axis running
// from the detection (DetectedMs before the decision) to the run's end.
func waterfall(tr api.Transition) entry {
	e := entry{Transition: tr, Takeover: tr.To == "ACTIVE", DetectWidth: 0.8}
	total := tr.TotalMs
	for _, s := range tr.Steps {
		total = max(total, s.DoneAtMs)
		for _, pt := range s.Parts {
			total = max(total, pt.DoneAtMs)
		}
	}
	span := tr.DetectedMs + total
	if span > 0 {
		e.DetectWidth = math.Max(0.8, tr.DetectedMs/span*100)
	}
	place := func(doneAt, ms float64) (left, width float64) {
		if span <= 0 {
			return 0, 100
		}
		width = math.Max(0.8, ms/span*100)
		left = math.Max(0, (tr.DetectedMs+doneAt-ms)/span*100)
		return math.Min(left, 100-width), width
	}
	for _, s := range tr.Steps {
		b := bar{Step: s, Retried: s.Attempts > 1}
		b.Left, b.Width = place(s.DoneAtMs, s.Ms)
		notable := len(s.Parts) > 1
		for _, pt := range s.Parts {
			pb := partBar{StepPart: pt, Retried: pt.Attempts > 1}
			pb.Left, pb.Width = place(pt.DoneAtMs, pt.Ms)
			b.Retried = b.Retried || pb.Retried
			notable = notable || pb.Retried || !pt.OK
			b.Parts = append(b.Parts, pb)
		}
		if !notable {
			b.Parts = nil
		}
		if !s.OK {
			e.Failed = true
		}
		e.Retried = e.Retried || b.Retried
		e.Bars = append(e.Bars, b)
	}
	return e
}

// shown lists, per subsystem, the fields the page shows first.
var shown = map[string][]string{
	"sessions": {"strategy", "connected", "held", "pending", "lag_ms", "sent_per_sec", "received_per_sec", "last_error"},
	"sync":     {"connected", "sets", "pending", "conflicts", "last_refusal", "last_error"},
}

// fields flattens a subsystem's status to what fits a card: the known
// fields of sessions and sync, the scalar ones of any other.
func fields(name string, st any) []kv {
	b, err := json.Marshal(st)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return []kv{{"status", string(b)}}
	}
	if name == "sync" {
		summariseSync(m)
	}
	keys := shown[name]
	if keys == nil {
		keys = sortedKeys(m)
	}
	var out []kv
	for _, k := range keys {
		val, ok := m[k]
		if !ok {
			continue
		}
		switch x := val.(type) {
		case []any:
			if shown[name] == nil {
				out = append(out, kv{k, fmt.Sprint(len(x))}) // a list: how many
			}
		case map[string]any, nil:
			continue
		case float64:
			out = append(out, kv{k, trimFloat(x)})
		default:
			out = append(out, kv{k, fmt.Sprint(x)})
		}
	}
	return out
}

// summariseSync counts config sync's sets, conflicts and waiting files
// and finds its last refusal.
func summariseSync(m map[string]any) {
	sets, _ := m["sets"].([]any)
	m["sets"] = float64(len(sets))
	var conflicts, pending float64
	for _, s := range sets {
		sm, _ := s.(map[string]any)
		c, _ := sm["conflicts"].(float64)
		conflicts += c
		p, _ := sm["pending"].(float64)
		pending += p
	}
	m["conflicts"], m["pending"] = conflicts, pending
	evs, _ := m["events"].([]any)
	for i := len(evs) - 1; i >= 0; i-- {
		ev, _ := evs[i].(map[string]any)
		if k, _ := ev["kind"].(string); strings.Contains(k, "refused") {
			m["last_refusal"] = fmt.Sprintf("%v %v", ev["key"], ev["error"])
			break
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.2f", f)
}

func funcs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			t = t.UTC()
			if n := now().UTC(); t.YearDay() != n.YearDay() || t.Year() != n.Year() {
				return t.Format("Jan 2 15:04:05")
			}
			return t.Format("15:04:05.000")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return human(now().Sub(t)) + " ago"
		},
		"ms":        func(f float64) string { return fmt.Sprintf("%.1f ms", f) },
		"lower":     strings.ToLower,
		"sparkline": sparkline,
		"track":     track,
		"num":       func(f float64) string { return fmt.Sprintf("%.2f", f) },
	}
}

// human writes a duration the way a person reads it: 4s, 12m, 3h5m.
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// track draws one waterfall bar from left to left+width percent. It is
// decoration: the row's text says the same (the name, the milliseconds).
func track(left, width float64) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg class="track" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" focusable="false"><rect class="bar" x="%.2f" y="1" width="%.2f" height="8"/></svg>`, left, width))
}

// sparkline draws samples (ms, -1 while down) as an inline SVG: a line
// per stretch of up samples, a red tick for each down one.
func sparkline(samples []float64) template.HTML {
	const w, h, n = 120.0, 28.0, 60
	if len(samples) == 0 {
		return template.HTML(`<svg class="spark" viewBox="0 0 120 28" role="img" aria-label="no samples yet"><line x1="0" y1="27" x2="120" y2="27" class="base"/></svg>`)
	}
	top := 0.0
	for _, s := range samples {
		top = max(top, s)
	}
	top = max(top*1.15, 0.1)
	step := w / (n - 1)
	off := float64(n - len(samples))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 120 28" role="img" aria-label="round trip, last %d samples, peak %.2f ms">`, len(samples), top/1.15)
	b.WriteString(`<line x1="0" y1="27" x2="120" y2="27" class="base"/>`)
	var pts []string
	flush := func() {
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline points="%s"/>`, strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for i, s := range samples {
		x := (off + float64(i)) * step
		if s < 0 {
			flush()
			fmt.Fprintf(&b, `<line x1="%.1f" y1="20" x2="%.1f" y2="28" class="down"/>`, x, x)
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, h-2-(s/top)*(h-4)))
	}
	flush()
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
