package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/feed"
	"github.com/batonha/baton/internal/lab"
)

const uiToken = "ui-test-token-0123456789"

// uiPort is the API's TCP port inside each appliance's namespace.
const uiPort = 9443

// TestUIShowsTheFailoverAndSwitchesOver runs a lab pair, fails node a,
// checks in headless Chromium that b's status page shows the takeover
// with its steps, saves a screenshot, clicks switchover and sees the roles
// move. It also follows b's event stream and logs how late the
// transition arrived.
func TestUIShowsTheFailoverAndSwitchesOver(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (scripts/deps.sh test installs it)")
		}
		t.Skip("chromium is missing (scripts/deps.sh test installs it)")
	}
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(uiToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, n := range e.nodes {
		b, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.Replace(string(b), "api:\n", fmt.Sprintf("api:\n  listen: \"%s:%d\"\n  token_file: %q\n  insecure: true\n",
			lab.FrontAddr(i), uiPort, tokenFile), 1)
		if err := os.WriteFile(n.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 15*time.Second)
	e.allPathsUp(10 * time.Second)

	// The browser runs outside the lab: a loopback proxy into b's API.
	base := e.proxy(fmt.Sprintf("%s:%d", lab.FrontAddr(1), uiPort))
	client := api.NewClient(base, uiToken)

	// Follow b's events; the transition to ACTIVE must arrive.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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

	e.kill(0, syscall.SIGKILL)
	e.eventually("b takes over", 10*time.Second, func() bool { return e.role(1) == "ACTIVE" })
	select {
	case lat := <-arrived:
		t.Logf("SSE: the transition to ACTIVE arrived %.1f ms after the role change", float64(lat.Microseconds())/1000)
	case <-time.After(10 * time.Second):
		t.Fatal("the transition to ACTIVE did not arrive on the event stream")
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
	// The newest timeline entry is the takeover, with the probe step.
	poll("the takeover in the timeline", `(() => {
		const tr = document.querySelector('#timeline li.tr');
		return tr && tr.dataset.to === 'ACTIVE' && Number(tr.dataset.steps) >= 1 &&
			tr.querySelector('.step[data-action="probe"][data-ok="true"]') !== null;
	})()`)
	poll("the live stream", `document.getElementById('live').classList.contains('on')`)

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(t.ArtifactDir(), "ui.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ui screenshot=%s\n", shot)

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
