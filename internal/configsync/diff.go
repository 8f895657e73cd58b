package configsync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// FileDiff is one file that differs from the peer's, after substitution:
// the peer's content is shown as it would be on this node.
type FileDiff struct {
	Set   string   `json:"set"`
	Path  string   `json:"path"`
	State string   `json:"state"` // differs | only_here | only_on_peer
	Local *Version `json:"local,omitempty"`
	Peer  *Version `json:"peer,omitempty"`
	Diff  string   `json:"diff,omitempty"` // lines: "-" this node, "+" the peer
}

// Diff asks the peer for its versions and contents and returns what
// differs now.
func (s *Syncer) Diff(ctx context.Context) ([]FileDiff, error) {
	st, err := s.link.Dial(ctx, Service)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	} else {
		_ = st.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := s.helloDial(st); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := st.Send(msgIndexReq, []byte{0, 0, 0, 2, '{', '}'}); err != nil {
		return nil, fmt.Errorf("asking the peer for its index: %w", err)
	}
	typ, p, err := st.Recv()
	if err != nil {
		return nil, fmt.Errorf("reading the peer's index: %w", err)
	}
	var remote index
	if _, err := decodeFrame(p, &remote); err != nil || typ != msgIndex {
		return nil, fmt.Errorf("peer answered with message %d: %v", typ, err)
	}
	local := map[Key]Meta{}
	for _, ie := range s.eng.Index() {
		local[ie.Key] = ie.Meta
	}
	peer := map[Key]Meta{}
	for _, ie := range remote.Entries {
		peer[ie.Key] = ie.Meta
	}
	var out []FileDiff
	var get []Key
	for k, l := range local {
		r, ok := peer[k]
		lv := versionOf(l)
		switch {
		case (!ok || r.Deleted) && !l.Deleted:
			fd := FileDiff{Set: k.Set, Path: k.Path, State: "only_here", Local: &lv}
			if ok {
				rv := versionOf(r)
				fd.Peer = &rv
			}
			out = append(out, fd)
		case ok && !r.Deleted && l.Deleted:
			rv := versionOf(r)
			out = append(out, FileDiff{Set: k.Set, Path: k.Path, State: "only_on_peer", Local: &lv, Peer: &rv})
		case ok && !r.Deleted && r.Hash != l.Hash:
			rv := versionOf(r)
			out = append(out, FileDiff{Set: k.Set, Path: k.Path, State: "differs", Local: &lv, Peer: &rv})
			get = append(get, k)
		}
	}
	for k, r := range peer {
		if _, ok := local[k]; !ok && !r.Deleted && s.eng.sets[k.Set] != nil {
			rv := versionOf(r)
			out = append(out, FileDiff{Set: k.Set, Path: k.Path, State: "only_on_peer", Peer: &rv})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Set+":"+out[i].Path < out[j].Set+":"+out[j].Path })
	if len(get) == 0 {
		return out, nil
	}
	req, err := encodeFrame(want{Keys: get}, nil)
	if err != nil {
		return nil, err
	}
	if err := st.Send(msgGet, req); err != nil {
		return nil, fmt.Errorf("asking the peer for files: %w", err)
	}
	texts := map[Key]string{}
	for range get {
		typ, p, err := st.Recv()
		if err != nil {
			return nil, fmt.Errorf("reading the peer's files: %w", err)
		}
		var h fileHeader
		content, err := decodeFrame(p, &h)
		if err != nil || typ != msgFile {
			return nil, fmt.Errorf("peer answered with message %d: %v", typ, err)
		}
		texts[h.Key] = s.eng.diffText(h.Key, content)
	}
	for i := range out {
		if t, ok := texts[Key{out[i].Set, out[i].Path}]; ok {
			out[i].Diff = t
		}
	}
	return out, nil
}

// diffText compares this node's file with the peer's canonical content
// converted to this node's form.
func (e *Engine) diffText(k Key, canon []byte) string {
	s := e.sets[k.Set]
	if s == nil {
		return ""
	}
	current, _ := os.ReadFile(e.path(s, k.Path))
	theirs, err := s.tr.decode(canon, current)
	if err != nil {
		return "cannot convert the peer's version: " + err.Error()
	}
	return lineDiff(current, theirs, 200)
}

// lineDiff lists the lines only in a ("-") and only in b ("+"), in file
// order, using a longest common subsequence; at most max lines.
func lineDiff(a, b []byte, max int) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	if len(la)*len(lb) > 4_000_000 {
		return fmt.Sprintf("files too large to compare line by line (%d and %d bytes)", len(a), len(b))
	}
	n, m := len(la), len(lb)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if la[i] == lb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max32(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out bytes.Buffer
	lines := 0
	emit := func(prefix string, num int, s string) {
		if lines < max {
			fmt.Fprintf(&out, "%s%d: %s\n", prefix, num, s)
		}
		lines++
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && la[i] == lb[j]:
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			emit("+", j+1, lb[j])
			j++
		default:
			emit("-", i+1, la[i])
			i++
		}
	}
	if lines > max {
		fmt.Fprintf(&out, "… %d more lines differ\n", lines-max)
	}
	return out.String()
}

func max32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}
