package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/configsync"
)

// cmdSync implements `baton sync now|status|diff`.
func cmdSync(e env, args []string) int {
	if len(args) == 0 || (args[0] != "now" && args[0] != "status" && args[0] != "diff") {
		fmt.Fprintln(e.stderr, "usage: baton sync now|status|diff [--json] [--socket PATH | --config FILE | --url URL --token-file F]")
		return exitUsage
	}
	sub := args[0]
	fs := newFlags(e, "sync "+sub, "[--json] [--socket PATH | --config FILE | --url URL --token-file F]")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "status: list every file, not only those pending or failing")
	cf := addClientFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	c, err := newSyncClient(e, cf)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	switch sub {
	case "status", "now":
		var st configsync.Status
		method, path := http.MethodGet, "/v1/sync/status"
		if *all {
			path += "?detail=1"
		}
		if sub == "now" {
			method, path = http.MethodPost, "/v1/sync/now"
		}
		raw, code, err := c.call(ctx, method, path)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		if *asJSON {
			e.stdout.Write(raw)
			return boolExit(code == http.StatusOK)
		}
		if code != http.StatusOK {
			var fail struct {
				Error  string            `json:"error"`
				Status configsync.Status `json:"status"`
			}
			_ = json.Unmarshal(raw, &fail)
			fmt.Fprintf(e.stderr, "baton: sync %s: %s\n", sub, fail.Error)
			if fail.Status.Node != "" {
				printSyncStatus(e.stdout, fail.Status)
			}
			return exitFailure
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			fmt.Fprintf(e.stderr, "baton: decoding status: %v\n", err)
			return exitFailure
		}
		printSyncStatus(e.stdout, st)
		return exitOK
	default: // diff
		raw, code, err := c.call(ctx, http.MethodGet, "/v1/sync/diff")
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		var out struct {
			Error string                `json:"error"`
			Files []configsync.FileDiff `json:"files"`
		}
		_ = json.Unmarshal(raw, &out)
		if code != http.StatusOK {
			fmt.Fprintf(e.stderr, "baton: sync diff: %s\n", out.Error)
			return exitFailure
		}
		if *asJSON {
			e.stdout.Write(raw)
			return exitOK
		}
		if len(out.Files) == 0 {
			fmt.Fprintln(e.stdout, "in step: no differences with the peer")
			return exitOK
		}
		for _, f := range out.Files {
			fmt.Fprintf(e.stdout, "%s %s: %s\n", f.Set, f.Path, strings.ReplaceAll(f.State, "_", " "))
			if f.Local != nil {
				fmt.Fprintf(e.stdout, "  here: %s\n", versionText(*f.Local))
			}
			if f.Peer != nil {
				fmt.Fprintf(e.stdout, "  peer: %s\n", versionText(*f.Peer))
			}
			for _, l := range strings.Split(strings.TrimRight(f.Diff, "\n"), "\n") {
				if l != "" {
					fmt.Fprintf(e.stdout, "    %s\n", l)
				}
			}
		}
		return exitFailure // like diff(1): differences exit 1
	}
}

func boolExit(ok bool) int {
	if ok {
		return exitOK
	}
	return exitFailure
}

func versionText(v configsync.Version) string {
	keys := make([]string, 0, len(v.VV))
	for k := range v.VV {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, v.VV[k]))
	}
	s := "{" + strings.Join(parts, " ") + "}"
	if v.Deleted {
		return s + " deleted"
	}
	if v.Hash != "" {
		s += " " + v.Hash
	}
	if v.Node != "" {
		s += " by " + v.Node
	}
	return s
}

func printSyncStatus(w io.Writer, st configsync.Status) {
	conn := "connected"
	if !st.Connected {
		conn = "NOT connected"
	}
	fmt.Fprintf(w, "config sync %s ⇄ %s: %s\n", st.Node, st.Peer, conn)
	if st.LastError != "" {
		fmt.Fprintf(w, "last error: %s\n", st.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tFILES\tPENDING\tAPPLIED\tCONFLICTS\tFAILURES\tLAST SYNC")
	for _, s := range st.Sets {
		last := "never"
		if !s.LastSync.IsZero() {
			last = s.LastSync.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Files, s.Pending, s.Applied, s.Conflicts, s.Failures, last)
	}
	tw.Flush()
	for _, s := range st.Sets {
		for _, f := range s.FileList {
			peer := "unknown"
			if f.Peer != nil {
				peer = versionText(*f.Peer)
			}
			flag := ""
			if f.Pending {
				flag = " (pending)"
			}
			fmt.Fprintf(w, "  %s/%s%s: here %s, peer %s\n", s.Name, f.Path, flag, versionText(f.Local), peer)
			if f.Error != "" {
				fmt.Fprintf(w, "    error: %s\n", f.Error)
			}
			if f.PeerError != "" {
				fmt.Fprintf(w, "    peer error: %s\n", f.PeerError)
			}
		}
	}
	if n := len(st.Events); n > 0 {
		fmt.Fprintln(w, "recent events:")
		for _, ev := range st.Events[max(0, n-10):] {
			extra := ""
			if ev.Copy != "" {
				extra = " (kept " + ev.Copy + ")"
			}
			fmt.Fprintf(w, "  %s %s %s/%s: %s%s\n", ev.At.Local().Format(time.TimeOnly), ev.Kind, ev.Set, ev.Path, ev.Detail, extra)
		}
	}
}

// syncClient calls the daemon's /v1/sync endpoints.
type syncClient struct{ c *api.Client }

func newSyncClient(e env, cf clientFlags) (*syncClient, error) {
	c, err := cf.client(e)
	if err != nil {
		return nil, err
	}
	return &syncClient{c: c}, nil
}

func (c *syncClient) call(ctx context.Context, method, path string) ([]byte, int, error) {
	b, code, err := c.c.Raw(ctx, method, path)
	if err != nil {
		return nil, 0, err
	}
	if code == http.StatusNotFound {
		return nil, 0, fmt.Errorf("%s: configuration sync is not configured on this node (no sync section)", path)
	}
	return b, code, nil
}
