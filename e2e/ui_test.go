package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/feed"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/cloud"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/pki"
)

const uiToken = "ui-test-token-0123456789"

// uiPort is the API's TCP port inside each appliance's namespace.
const uiPort = 9443

// uiVIPs are the two virtual addresses of the UI test's pair: the vip
// step of a takeover has one part per address.
var uiVIPs = [2]string{"10.100.1.60/24", "10.100.1.61/24"}

// newUIEnv is the cloud topology (two AWS route tables in the emulated
// EC2 API) with a pair whose takeover moves both tables and two VIPs, the
// peer link configured (each page shows the peer's own view through it),
// and the API on front (TCP, token) for the browser. No preemption: a
// restarted nva-a stays standby.
func newUIEnv(t *testing.T) *routesEnv {
	t.Helper()
	labtest.RequireRoot(t)
	bin := batonBin(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "lab")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "lab")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tp, err := cloud.NewTopology(lab.RandomPrefix(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	capi := cloud.New(cloud.Options{Latency: 5 * time.Millisecond})
	t.Cleanup(func() { capi.Close() })
	cloud.SeedAWS(capi, 0)
	if err := tp.Connect(capi, "aws"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nodes, err := lab.SetupBatonNodes(tp.Pair(), dir, [2]lab.NodeOptions{
		{Priority: 200, Interval: interval, Misses: 3},
		{Priority: 100, Interval: interval, Misses: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "pki")
	if err := pki.Generate(certs, []string{lab.ApplianceName(0), lab.ApplianceName(1)}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(uiToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		b, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		name := lab.ApplianceName(i)
		cfg := strings.Replace(string(b), "api:\n", fmt.Sprintf("api:\n  listen: \"%s:%d\"\n  token_file: %q\n  insecure: true\n",
			lab.FrontAddr(i), uiPort, tokenFile), 1)
		cfg += routesYAML(i) + vipYAML("", uiVIPs[0], uiVIPs[1]) + fmt.Sprintf(`link:
  listen: ":5407"
  address: "%s:5407"
  ca_file: %q
  cert_file: %q
  key_file: %q
`, lab.HBAddr(1-i), filepath.Join(certs, "ca.crt"), filepath.Join(certs, name+".crt"), filepath.Join(certs, name+".key"))
		if err := os.WriteFile(n.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := &routesEnv{env: &env{t: t, pair: tp.Pair(), nodes: nodes, bin: bin}, topo: tp, api: capi}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				b, _ := os.ReadFile(n.LogPath)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("--- %s log (tail) ---\n%s", lab.ApplianceName(n.Index), strings.Join(lines, "\n"))
			}
		}
	})
	return e
}

// TestUIShowsTheFailoverAndSwitchesOver runs a pair steered by two cloud
// route tables and two VIPs, fails node a (the emulated EC2 API throttles
// the first route change once), and checks in headless Chromium that b's
// status page shows the takeover's waterfall with a bar per route table
// (one retried) and per address, and a's own view through the peer link;
// that the page is readable in the dark and the light scheme, gives its
// graphics text alternatives and works from the keyboard. It saves a
// screenshot, clicks switchover and sees the roles move. It also follows
// b's event stream and logs how late the transition arrived.
func TestUIShowsTheFailoverAndSwitchesOver(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (scripts/deps.sh test installs it)")
		}
		t.Skip("chromium is missing (scripts/deps.sh test installs it)")
	}
	e := newUIEnv(t)
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 15*time.Second)
	e.allPathsUp(10 * time.Second)
	e.eventually("nva-a captured both routes", 10*time.Second, func() bool {
		_, owned := e.cloudStatus(0)
		return len(owned) == 2
	})

	// The browser runs outside the lab: a loopback proxy into b's API.
	base := e.proxy(fmt.Sprintf("%s:%d", lab.FrontAddr(1), uiPort))
	client := api.NewClient(base, uiToken)

	// Follow b's events; the transition to ACTIVE must arrive.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	arrived := make(chan time.Duration, 1)
	subscribed := make(chan struct{})
	var once sync.Once
	go func() {
		_ = client.Events(ctx, nil, func(ev feed.Event) error {
			once.Do(func() { close(subscribed) })
			if ev.Type == feed.TypeTransition && strings.Contains(string(ev.Data), `"to":"ACTIVE"`) {
				select {
				case arrived <- time.Since(ev.At):
				default:
				}
			}
			return nil
		})
	}()
	// Any event says the stream is live (samples come every 10 s; a path
	// event or an action may come sooner).
	select {
	case <-subscribed:
	case <-time.After(15 * time.Second):
		t.Fatal("b's event stream delivered nothing")
	}

	// The first route change of the takeover is throttled: that table's
	// bar is marked retried.
	var throttled atomic.Int32
	e.api.SetFault(func(op string) (int, string) {
		if op == "ReplaceRoute" && throttled.Add(1) == 1 {
			return 503, "RequestLimitExceeded"
		}
		return 0, ""
	})
	e.kill(0, syscall.SIGKILL)
	e.eventually("b active and both routes on its ENI", 15*time.Second, func() bool {
		s, c, _ := e.targets()
		return e.role(1) == "ACTIVE" && s == cloud.ENIB && c == cloud.ENIB
	})
	select {
	case lat := <-arrived:
		t.Logf("SSE: the transition to ACTIVE arrived %.1f ms after the role change", float64(lat.Microseconds())/1000)
	case <-time.After(10 * time.Second):
		t.Fatal("the transition to ACTIVE did not arrive on the event stream")
	}
	if throttled.Load() < 2 {
		t.Fatalf("the emulated EC2 API saw %d route changes, want the throttled one and its retry", throttled.Load())
	}
	e.start(0)
	e.roles("STANDBY", "ACTIVE", 15*time.Second)
	e.allPathsUp(10 * time.Second)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1200, 1500))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string]("document.getElementById('main') ? document.getElementById('main').innerText : document.body.innerText"))
			t.Fatalf("page: waiting for %s: %v\n%s", what, err, html)
		}
	}
	eval := func(what, expr string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("page: %s: %v", what, err)
		}
		return s
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/ui/"), // no token yet: the login form
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), uiToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("#self .role")),
	); err != nil {
		t.Fatalf("logging in to the status page: %v", err)
	}
	poll("b ACTIVE, a STANDBY", `document.querySelector('#self .role').dataset.role === 'ACTIVE' &&
		document.querySelector('#peer .role').dataset.role === 'STANDBY'`)
	poll("every path up", `document.querySelectorAll('#paths tr.path').length >= 3 &&
		document.querySelectorAll('#paths tr.path[data-up="false"]').length === 0`)
	// The newest timeline entry is the takeover: the probe step, the
	// routes step with a bar per table (one retried), the vip step with a
	// bar per address.
	poll("the takeover in the timeline with its tables and addresses", `(() => {
		const tr = document.querySelector('#timeline li.tr');
		if (!tr || tr.dataset.to !== 'ACTIVE' || !tr.classList.contains('retried')) return false;
		const ok = s => tr.querySelector(s) !== null;
		const routes = tr.querySelector('.step[data-action="routes"][data-ok="true"]');
		const tables = routes ? [...tr.querySelectorAll('.step.part[data-target^="rtb-"]')] : [];
		const vips = [...tr.querySelectorAll('.step.part[data-target$="on eth0"]')];
		return ok('.step[data-action="probe"][data-ok="true"]') && ok('.step[data-action="vip"][data-ok="true"]') &&
			routes.dataset.parts === '2' && tables.length === 2 && tables.every(p => p.dataset.ok === 'true') &&
			tables.some(p => Number(p.dataset.attempts) > 1 && p.classList.contains('retried')) &&
			vips.length === 2 && vips.some(p => p.dataset.target.startsWith('`+uiVIPs[0]+`')) &&
			vips.some(p => p.dataset.target.startsWith('`+uiVIPs[1]+`'));
	})()`)
	// a's own view through the peer link: its role, its paths, its
	// timeline (its takeover at the start, then standby after the restart).
	poll("the peer's view", `(() => {
		const v = document.getElementById('peer-view');
		return v && v.dataset.fetched === 'true' && v.querySelector('.role').dataset.role === 'STANDBY' &&
			v.querySelectorAll('#peer-paths-table tr.path[data-up="true"]').length >= 3 &&
			v.querySelector('#peer-timeline-list li.tr[data-to="STANDBY"]') !== null;
	})()`)
	poll("the live stream", `document.getElementById('live').classList.contains('on')`)

	// Dark and light schemes: the system's preference is followed, the
	// page and its cards change colour, and text keeps a readable
	// contrast (WCAG AA, 4.5:1) in both.
	media := func(scheme string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
			return err
		})
	}
	const contrast = `(() => {
		const rgb = c => c.match(/[\d.]+/g).slice(0, 3).map(Number);
		const lum = c => { const v = rgb(c).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
			return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
		const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
		const bg = getComputedStyle(document.body).backgroundColor;
		const card = getComputedStyle(document.querySelector('#paths')).backgroundColor;
		const worst = Math.min(...['#self .label', '#paths tbody th', '#timeline .tr-head time', '#timeline .step .name', 'footer', '.facts dt']
			.map(s => document.querySelector(s)).filter(Boolean)
			.map(el => ratio(getComputedStyle(el).color, el.closest('.card') ? card : bg)));
		return JSON.stringify({scheme: getComputedStyle(document.documentElement).colorScheme, bgLum: lum(bg), worst});
	})()`
	type look struct {
		Scheme string  `json:"scheme"`
		BgLum  float64 `json:"bgLum"`
		Worst  float64 `json:"worst"`
	}
	looks := map[string]look{}
	for _, scheme := range []string{"light", "dark"} {
		if err := chromedp.Do(bctx, media(scheme)); err != nil {
			t.Fatalf("emulating prefers-color-scheme: %s: %v", scheme, err)
		}
		var l look
		if err := json.Unmarshal([]byte(eval("measuring the "+scheme+" scheme", contrast)), &l); err != nil {
			t.Fatal(err)
		}
		t.Logf("scheme %s: color-scheme %s, background luminance %.3f, lowest text contrast %.1f:1", scheme, l.Scheme, l.BgLum, l.Worst)
		if l.Scheme != scheme || l.Worst < 4.5 {
			t.Errorf("the %s scheme: %+v, want color-scheme %s and text contrast at least 4.5:1", scheme, l, scheme)
		}
		looks[scheme] = l
	}
	if looks["dark"].BgLum > 0.05 || looks["light"].BgLum < 0.8 {
		t.Errorf("backgrounds do not follow the scheme: %+v", looks)
	}
	// The ◐ button overrides the system: dark on a light system.
	if err := chromedp.Do(bctx, media("light"), chromedp.Click(chromedp.ID("scheme"), chromedp.NodeVisible)); err != nil {
		t.Fatalf("clicking the scheme button: %v", err)
	}
	poll("the scheme button's dark override", `getComputedStyle(document.documentElement).colorScheme === 'dark'`)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("scheme"), chromedp.NodeVisible)); err != nil {
		t.Fatalf("clicking the scheme button: %v", err)
	}
	poll("back to light", `getComputedStyle(document.documentElement).colorScheme === 'light'`)

	// Text alternatives: every graphic is decoration (aria-hidden) or
	// labelled, every button and link has a name, the form field a label.
	if bad := eval("checking text alternatives", `(() => {
		const bad = [];
		const name = el => (el.getAttribute('aria-label') || [...el.childNodes].filter(n => !(n.nodeType === 1 && n.getAttribute('aria-hidden') === 'true')).map(n => n.textContent).join('')).trim();
		for (const g of document.querySelectorAll('svg, img')) {
			if (g.closest('[aria-hidden="true"]')) continue;
			if (!(g.getAttribute('role') === 'img' && g.getAttribute('aria-label')) && !g.getAttribute('alt')) bad.push(g.outerHTML.slice(0, 80));
		}
		for (const b of document.querySelectorAll('button, a[href]')) if (!name(b)) bad.push(b.outerHTML.slice(0, 80));
		if (!document.documentElement.lang) bad.push('html without lang');
		return bad.join('\n');
	})()`); bad != "" {
		t.Errorf("elements without a text alternative or name:\n%s", bad)
	}
	// Keyboard: Tab reaches Switchover (the focus is visible), Enter
	// opens the confirmation, Escape closes it and nothing happens.
	eval("starting from the top", `(document.activeElement.blur(), window.scrollTo(0, 0), '')`)
	reached := false
	for range 40 {
		if err := chromedp.Do(bctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		if eval("reading the focus", `document.activeElement.dataset.cmd || ''`) == "/v1/switchover" {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("Tab never reached the Switchover button")
	}
	if o := eval("reading the focus ring", `getComputedStyle(document.activeElement).outlineStyle`); o == "none" {
		t.Error("the focused button shows no focus ring")
	}
	if err := chromedp.Do(bctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	poll("the confirmation, from the keyboard", `document.getElementById('confirm').open`)
	if err := chromedp.Do(bctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	poll("the confirmation closed by Escape", `!document.getElementById('confirm').open`)
	if r := e.role(1); r != "ACTIVE" {
		t.Fatalf("b is %s after Escape: a cancelled confirmation must do nothing", r)
	}

	// The screenshot of the page after the failover, in the dark scheme
	// (docs/ui.png), and one in the light: the system's scheme again (the
	// button's choice forgotten), nothing focused.
	eval("forgetting the scheme button's choice", `(localStorage.removeItem('baton-scheme'), delete document.documentElement.dataset.scheme,
		document.activeElement.blur(), '')`)
	for _, sh := range []struct{ scheme, file string }{{"light", "ui-light.png"}, {"dark", "ui.png"}} {
		if err := chromedp.Do(bctx, media(sh.scheme)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		shot := filepath.Join(t.ArtifactDir(), sh.file)
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		if sh.file == "ui.png" {
			fmt.Printf("ui screenshot=%s\n", shot)
		}
	}

	// Switchover from the page: the confirmation, then the roles move.
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`button[data-cmd="/v1/switchover"]`), chromedp.NodeEnabled),
		chromedp.WaitVisible(chromedp.ID("confirm-ok")),
		chromedp.Click(chromedp.ID("confirm-ok")),
	); err != nil {
		t.Fatalf("clicking switchover: %v", err)
	}
	poll("b STANDBY, a ACTIVE after the switchover", `document.querySelector('#self .role').dataset.role === 'STANDBY' &&
		document.querySelector('#peer .role').dataset.role === 'ACTIVE'`)
	e.roles("ACTIVE", "STANDBY", 5*time.Second)
	// a takes its routes back.
	e.eventually("both routes back on a's ENI", 10*time.Second, func() bool {
		s, c, _ := e.targets()
		return s == cloud.ENIA && c == cloud.ENIA
	})
}

// proxy forwards a loopback port of the test's own namespace to addr as
// the lab's client host reaches it; it returns the proxy's http:// URL.
func (e *env) proxy(addr string) string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				u, err := e.pair.Client.DialContext(ctx, "tcp", addr)
				cancel()
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); u.Close() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}
