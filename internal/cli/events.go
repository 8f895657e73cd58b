package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/feed"
)

// cmdEvents follows the daemon's event stream (GET /v1/events).
func cmdEvents(e env, args []string) int {
	fs := newFlags(e, "events", "[--json] [--types a,b] [--socket PATH | --config FILE | --url URL --token-file F]")
	asJSON := fs.Bool("json", false, "print each event as one JSON line")
	types := fs.String("types", "", "only these event types, comma-separated (transition, takeover, action, path, peer, drop, samples)")
	cf := addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c, err := cf.client(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	var only []string
	if *types != "" {
		only = strings.Split(*types, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(e.stdout)
	err = c.Events(ctx, only, func(ev feed.Event) error {
		if *asJSON {
			return enc.Encode(ev)
		}
		_, err := fmt.Fprintln(e.stdout, formatEvent(ev))
		return err
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// formatEvent writes one event as a terminal line.
func formatEvent(ev feed.Event) string {
	at := ev.At.Local().Format("15:04:05.000")
	switch ev.Type {
	case feed.TypeTransition, feed.TypeTakeover:
		var tr api.Transition
		if json.Unmarshal(ev.Data, &tr) == nil {
			if ev.Type == feed.TypeTakeover {
				var b strings.Builder
				fmt.Fprintf(&b, "%s  %-10s %s -> %s term %d done in %.1fms:", at, ev.Type, tr.From, tr.To, tr.Term, tr.TotalMs)
				for _, s := range tr.Steps {
					mark := ""
					if !s.OK {
						mark = " FAILED"
					}
					fmt.Fprintf(&b, " %s %.1fms%s", s.Action, s.Ms, mark)
				}
				return b.String()
			}
			return fmt.Sprintf("%s  %-10s %s -> %s term %d %s %s", at, ev.Type, tr.From, tr.To, tr.Term, tr.Reason, tr.Detail)
		}
	}
	var m map[string]any
	if json.Unmarshal(ev.Data, &m) != nil {
		return fmt.Sprintf("%s  %-10s %s", at, ev.Type, ev.Data)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-10s", at, ev.Type)
	for _, k := range keys {
		v, _ := json.Marshal(m[k])
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// watchStatus redraws the status in place on each event (and once a
// second for the relative times) until interrupted.
func watchStatus(e env, c *api.Client) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	changed := make(chan struct{}, 1)
	go func() {
		_ = c.Events(ctx, nil, func(feed.Event) error {
			select {
			case changed <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Status(sctx)
		cancel()
		if ctx.Err() != nil {
			return exitOK
		}
		redraw(e.stdout, func(w io.Writer) {
			if err != nil {
				fmt.Fprintf(w, "baton: %v\n", err)
				return
			}
			printStatus(w, st, time.Now())
		})
		select {
		case <-ctx.Done():
			return exitOK
		case <-changed:
		case <-tick.C:
		}
	}
}

// redraw clears the terminal and draws what draw writes.
func redraw(w io.Writer, draw func(io.Writer)) {
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	draw(&b)
	_, _ = io.WriteString(w, b.String())
}
