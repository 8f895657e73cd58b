// Package ui is baton's status page: one server-rendered HTML page (it
// shows the state without JavaScript) that a small script keeps live from
// the API's event stream. Everything is embedded: no CDN, no build step.
package ui

import (
	"bytes"
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
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) { p.render(w, "page") })
	mux.HandleFunc("GET /ui/fragment", func(w http.ResponseWriter, r *http.Request) { p.render(w, "main") })
	mux.HandleFunc("GET /ui/login", func(w http.ResponseWriter, r *http.Request) {
		p.execute(w, "login", map[string]any{"Failed": r.URL.Query().Get("failed") != ""})
	})
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(sub)))
}

func (p *Page) render(w http.ResponseWriter, name string) {
	p.execute(w, name, p.view(p.opt.Status()))
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
	Timeline   []entry // newest first
	Subsystems []subsystem
	Drops      []kv
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
	// DetectWidth is the detection's bar: from the detection to the
	// decision, in percent of the run.
	DetectWidth float64
	Bars        []bar
}

// bar is one step of a waterfall, placed in percent of the run.
type bar struct {
	api.Step
	Left, Width float64
	Retried     bool
}

func (p *Page) view(st api.Status) view {
	v := view{S: st, Now: p.opt.Now(), ReadOnly: p.opt.ReadOnly}
	for i := len(st.Transitions) - 1; i >= 0; i-- {
		v.Timeline = append(v.Timeline, waterfall(st.Transitions[i]))
	}
	for _, k := range sortedKeys(st.Peer.Drops) {
		v.Drops = append(v.Drops, kv{k, fmt.Sprint(st.Peer.Drops[k])})
	}
	for _, name := range sortedKeys(st.Subsystems) {
		v.Subsystems = append(v.Subsystems, subsystem{Name: name, Fields: fields(name, st.Subsystems[name])})
	}
	return v
}

// waterfall places the steps of tr on one axis running from the
// detection (DetectedMs before the decision) to the run's end.
func waterfall(tr api.Transition) entry {
	e := entry{Transition: tr, Takeover: tr.To == "ACTIVE", DetectWidth: 0.8}
	total := tr.TotalMs
	for _, s := range tr.Steps {
		total = max(total, s.DoneAtMs)
	}
	span := tr.DetectedMs + total
	if span > 0 {
		e.DetectWidth = math.Max(0.8, tr.DetectedMs/span*100)
	}
	for _, s := range tr.Steps {
		b := bar{Step: s, Retried: s.Attempts > 1, Width: 100}
		if span > 0 {
			b.Left = math.Max(0, (tr.DetectedMs+s.DoneAtMs-s.Ms)/span*100)
			b.Width = math.Max(0.8, s.Ms/span*100)
			b.Left = math.Min(b.Left, 100-b.Width)
		}
		if !s.OK {
			e.Failed = true
		}
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
		case map[string]any, []any, nil:
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
