package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batonha/baton/internal/sessionsync"
)

func cmdSessions(e env, args []string) int {
	fs := newFlags(e, "sessions", "[--dump [--source held|kernel] [--proto P] [--addr IP|PREFIX] [--port N] [--limit N]] [--json] [--socket PATH | --config FILE]")
	asJSON := fs.Bool("json", false, "print JSON")
	dump := fs.Bool("dump", false, "list connections (held for the peer, or the kernel's)")
	source := fs.String("source", "held", "with --dump: held (the peer's connections held here) or kernel (this node's table)")
	proto := fs.String("proto", "", "with --dump: only this protocol (tcp, udp, icmp, ...)")
	addr := fs.String("addr", "", "with --dump: only connections with an address in this prefix")
	port := fs.Int("port", 0, "with --dump: only connections with this port")
	limit := fs.Int("limit", 100, "with --dump: at most this many")
	cf := addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	get, err := sessionsGetter(e, cf)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *dump {
		q := url.Values{"source": {*source}, "limit": {strconv.Itoa(*limit)}}
		if *proto != "" {
			q.Set("proto", *proto)
		}
		if *addr != "" {
			q.Set("addr", *addr)
		}
		if *port != 0 {
			q.Set("port", strconv.Itoa(*port))
		}
		var d sessionsync.Dump
		if err := get(ctx, "/v1/sessions/entries?"+q.Encode(), &d); err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		if *asJSON {
			printJSON(e.stdout, d)
			return exitOK
		}
		printSessionDump(e.stdout, d)
		return exitOK
	}
	var st sessionsync.Status
	if err := get(ctx, "/v1/sessions", &st); err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		printJSON(e.stdout, st)
		return exitOK
	}
	printSessionStatus(e.stdout, st)
	return exitOK
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func printSessionStatus(w io.Writer, st sessionsync.Status) {
	role := "standby (holding the peer's connections)"
	if st.Active {
		role = "active (source)"
	}
	link := "down"
	if st.Connected {
		link = "up"
	}
	in := "none"
	if st.Inbound {
		in = "up"
	}
	fmt.Fprintf(w, "sessions  strategy %s  %s  peer %s\n", st.Strategy, role, st.Peer)
	fmt.Fprintf(w, "stream    to peer %s  from peer %s  lag %.1fms  ack rtt %.2fms  pending %d  in flight %d batches\n",
		link, in, st.LagMs, st.AckRTTMs, st.Pending, st.Inflight)
	fmt.Fprintf(w, "held      %d connections, %d changes waiting for the kernel\n", st.Held, st.Injecting)
	fmt.Fprintf(w, "changes   sent %d (%.0f/s)  received %d (%.0f/s)  local events %d  filtered %d\n",
		st.Sent, st.SentPerSec, st.Received, st.ReceivedPerSec, st.LocalEvents, st.Filtered)
	fmt.Fprintf(w, "resyncs   sent %d (last %d entries in %.1fms)  received %d  event overruns %d\n",
		st.ResyncsSent, st.LastResyncN, st.LastResyncMs, st.ResyncsReceived, st.Overruns)
	fmt.Fprintf(w, "commits   %d (last %d entries in %.1fms)\n", st.Commits, st.LastCommitN, st.LastCommitMs)
	fmt.Fprintf(w, "drops     bad frames %d  refused by kernel %d  stale deleted %d  outside the filter %d  over max_entries (%d) %d\n",
		st.DecodeErrors, st.ApplyFailed, st.StaleDeleted, st.DroppedFiltered, st.MaxEntries, st.DroppedFull)
	if st.LastError != "" {
		fmt.Fprintf(w, "error     %s\n", st.LastError)
	}
}

func printSessionDump(w io.Writer, d sessionsync.Dump) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "proto\toriginal\treply\tnat\tstate\ttimeout\tmark")
	for _, c := range d.Entries {
		var nat []string
		if c.SNAT != "" {
			nat = append(nat, "snat "+c.SNAT)
		}
		if c.DNAT != "" {
			nat = append(nat, "dnat "+c.DNAT)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", c.Proto, c.Orig, c.Reply, strings.Join(nat, ","), c.State, c.Timeout, c.Mark)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d matching connections (%s)\n", len(d.Entries), d.Total, d.Source)
}

// sessionsGetter returns a GET-JSON function for the daemon the client
// flags point at.
func sessionsGetter(e env, cf clientFlags) (func(ctx context.Context, path string, out any) error, error) {
	c, err := cf.client(e)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, path string, out any) error {
		b, code, err := c.Raw(ctx, http.MethodGet, path)
		if err != nil {
			return err
		}
		if code == http.StatusNotFound {
			return fmt.Errorf("session sync is not configured on this node (no sessions section)")
		}
		if code != http.StatusOK {
			var er struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(b, &er)
			return fmt.Errorf("GET %s: %d: %s", path, code, er.Error)
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding %s answer: %w", path, err)
		}
		return nil
	}, nil
}
