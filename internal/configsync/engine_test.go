package configsync

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var names = [2]string{"nva-a", "nva-b"}
var addrs = [2]string{"10.0.1.4", "10.0.1.5"}

type tnode struct {
	i   int
	e   *Engine
	dir string // the set's dir
}

// newPair builds two engines whose set "conf" lives in separate dirs;
// mod adjusts the configuration (the same for both).
func newPair(t *testing.T, mod func(*Config)) [2]*tnode {
	t.Helper()
	root := t.TempDir()
	var out [2]*tnode
	for i := range 2 {
		cfg := Config{}
		cfg.SetDefaults()
		set := Set{}
		set.SetDefaults()
		set.Name = "conf"
		set.Dir = filepath.Join(root, names[i], "etc")
		set.Files = []string{"*.conf", "sub/*.conf"}
		set.Exclude = []string{"local-*.conf"}
		set.LocalLines = []string{`^hostname `}
		cfg.Sets = []Set{set}
		cfg.Substitute = map[string]string{addrs[i]: addrs[1-i]}
		if mod != nil {
			mod(&cfg)
		}
		e, err := NewEngine(EngineOptions{Config: cfg, Node: names[i], Peer: names[1-i], StateDir: filepath.Join(root, names[i], "state")})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &tnode{i: i, e: e, dir: set.Dir}
	}
	if out[0].e.Fingerprint() != out[1].e.Fingerprint() {
		t.Fatal("fingerprints differ")
	}
	return out
}

func (n *tnode) write(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(n.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *tnode) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(n.dir, rel))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// send delivers k from one engine to the other, as a stream would.
func send(t *testing.T, from, to *tnode, k Key) (ack, bool) {
	t.Helper()
	h, content, ok, err := from.e.Outgoing(k)
	if err != nil || !ok {
		return ack{}, false
	}
	// Through the wire encoding, to catch anything it would lose.
	p, err := encodeFrame(h, content)
	if err != nil {
		t.Fatal(err)
	}
	var got fileHeader
	body, err := decodeFrame(p, &got)
	if err != nil {
		t.Fatal(err)
	}
	a, pushBack := to.e.Receive(context.Background(), got, body)
	from.e.HandleAck(a)
	return a, pushBack
}

// syncAll runs full comparisons both ways until nothing moves.
func syncAll(t *testing.T, n [2]*tnode) {
	t.Helper()
	for round := 0; round < 10; round++ {
		moved := false
		for i := range 2 {
			from, to := n[i], n[1-i]
			need, push := to.e.CompareIndex(from.e.Index())
			for _, k := range need {
				send(t, from, to, k)
				moved = true
			}
			for _, k := range push {
				send(t, to, from, k)
				moved = true
			}
		}
		if !moved {
			return
		}
	}
	t.Fatal("sync did not settle in 10 rounds")
}

func TestPropagateWithSubstitutionAndLocalLines(t *testing.T) {
	n := newPair(t, nil)
	n[1].write(t, "fw.conf", "hostname b\nallow 10.0.1.4\n")
	n[0].write(t, "fw.conf", "hostname a\nallow 10.0.1.5\n")
	n[0].write(t, "local-x.conf", "per node\n")
	n[0].write(t, "sub/deep.conf", "bind 10.0.1.4:80\n")
	if err := os.Chmod(filepath.Join(n[0].dir, "sub/deep.conf"), 0o640); err != nil {
		t.Fatal(err)
	}
	syncAll(t, n)
	// Same content after substitution: the first exchange merges, no conflict.
	if got := n[1].read("fw.conf"); got != "hostname b\nallow 10.0.1.4\n" {
		t.Fatalf("fw.conf on nva-b: %q", got)
	}
	if got := n[1].read("sub/deep.conf"); got != "bind 10.0.1.5:80\n" {
		t.Fatalf("sub/deep.conf on nva-b: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(n[1].dir, "sub/deep.conf")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode not preserved: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(n[1].dir, "local-x.conf")); !os.IsNotExist(err) {
		t.Fatal("an excluded file crossed")
	}
	if c := n[0].e.counts["conf"].Conflicts + n[1].e.counts["conf"].Conflicts; c != 0 {
		t.Fatalf("%d conflicts for equal content", c)
	}
	// An edit on nva-b comes back to nva-a, keeping nva-a's local line.
	n[1].write(t, "fw.conf", "hostname b\nallow 10.0.1.4\nallow 10.0.1.5 port 22\n")
	syncAll(t, n)
	if got := n[0].read("fw.conf"); got != "hostname a\nallow 10.0.1.5\nallow 10.0.1.4 port 22\n" {
		t.Fatalf("fw.conf on nva-a: %q", got)
	}
	// Deletion propagates.
	if err := os.Remove(filepath.Join(n[0].dir, "sub/deep.conf")); err != nil {
		t.Fatal(err)
	}
	syncAll(t, n)
	if _, err := os.Stat(filepath.Join(n[1].dir, "sub/deep.conf")); !os.IsNotExist(err) {
		t.Fatal("deletion did not propagate")
	}
	st := n[1].e.status(true, nil, n[1].e.clk.Now())
	if st[0].Pending != 0 || st[0].Files != 1 {
		t.Fatalf("status: %+v", st[0])
	}
}

func TestConcurrentEditsKeepLoser(t *testing.T) {
	n := newPair(t, nil)
	n[0].write(t, "a.conf", "v0\n")
	syncAll(t, n)
	n[0].write(t, "a.conf", "edit by a\n")
	n[0].e.ScanAll()
	n[1].write(t, "a.conf", "edit by b\n") // later: wins
	n[1].e.ScanAll()
	syncAll(t, n)
	for i := range 2 {
		if got := n[i].read("a.conf"); got != "edit by b\n" {
			t.Fatalf("node %d: %q, want the later edit", i, got)
		}
	}
	copies, _ := filepath.Glob(filepath.Join(n[0].dir, "a.conf.baton-conflict-nva-a-*"))
	if len(copies) != 1 {
		t.Fatalf("conflict copies on nva-a: %v", copies)
	}
	if b, _ := os.ReadFile(copies[0]); string(b) != "edit by a\n" {
		t.Fatalf("conflict copy holds %q", b)
	}
	if n[0].e.counts["conf"].Conflicts == 0 {
		t.Fatal("conflict not counted")
	}
}

func TestValidateRefusesApplyRestores(t *testing.T) {
	dir := t.TempDir()
	applied := filepath.Join(dir, "applied")
	n := newPair(t, func(c *Config) {
		c.Sets[0].Validate = "! grep -q INVALID {file}"
		c.Sets[0].Apply = "! grep -q BREAKS {file} && cat {file} >> " + shellQuote(applied)
	})
	n[1].write(t, "fw.conf", "good\n")
	syncAll(t, n)
	if got := n[0].read("fw.conf"); got != "good\n" {
		t.Fatalf("got %q", got)
	}
	n[1].write(t, "fw.conf", "INVALID\n")
	n[1].e.ScanAll()
	a, _ := send(t, n[1], n[0], Key{"conf", "fw.conf"})
	if a.OK || !strings.Contains(a.Error, "validation failed") {
		t.Fatalf("ack %+v", a)
	}
	if got := n[0].read("fw.conf"); got != "good\n" {
		t.Fatalf("an invalid file was put in place: %q", got)
	}
	if tmps, _ := filepath.Glob(filepath.Join(n[0].dir, ".*baton-tmp*")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	if n[1].e.entries[Key{"conf", "fw.conf"}].PeerErr == "" {
		t.Fatal("the sender must record the peer's refusal")
	}
	// The same version is not validated again: the refusal is remembered.
	if need, _ := n[0].e.CompareIndex(n[1].e.Index()); len(need) != 0 {
		t.Fatalf("refused version wanted again: %v", need)
	}
	// A file whose apply fails is rolled back and applied again.
	n[1].write(t, "fw.conf", "BREAKS\n")
	n[1].e.ScanAll()
	a, _ = send(t, n[1], n[0], Key{"conf", "fw.conf"})
	if a.OK || !strings.Contains(a.Error, "previous file restored and applied") {
		t.Fatalf("ack %+v", a)
	}
	if got := n[0].read("fw.conf"); got != "good\n" {
		t.Fatalf("after a failed apply: %q", got)
	}
	b, _ := os.ReadFile(applied)
	if string(b) != "good\ngood\n" {
		t.Fatalf("apply log %q: want the first apply and the one after the restore", b)
	}
	backups, _ := filepath.Glob(filepath.Join(n[0].e.stateDir, "backup", "conf", "fw.conf", "*"))
	if len(backups) == 0 {
		t.Fatal("no backup kept")
	}
	kinds := map[string]int{}
	for _, ev := range n[0].e.events {
		kinds[ev.Kind]++
	}
	if kinds["refused"] != 1 || kinds["apply_failed"] != 1 {
		t.Fatalf("events %v", kinds)
	}
}

func TestBadInputRefused(t *testing.T) {
	n := newPair(t, func(c *Config) { c.MaxFileSize = 64 })
	outside := t.TempDir()
	recv := func(k Key, content string) ack {
		h := fileHeader{Key: k, Meta: Meta{VV: VV{"nva-b": 1}, Hash: hashOf([]byte(content)), Node: "nva-b", Mode: 0o644}}
		a, _ := n[0].e.Receive(context.Background(), h, []byte(content))
		return a
	}
	for _, c := range []struct {
		k    Key
		want string
	}{
		{Key{"conf", "../escape.conf"}, "not a clean path"},
		{Key{"conf", "/etc/passwd"}, "not a clean path"},
		{Key{"conf", "x.txt"}, "matches none"},
		{Key{"conf", "local-a.conf"}, "excluded"},
		{Key{"nope", "a.conf"}, "unknown sync set"},
	} {
		if a := recv(c.k, "x\n"); a.OK || !strings.Contains(a.Error, c.want) {
			t.Errorf("%v: ack %+v, want error containing %q", c.k, a, c.want)
		}
	}
	if a := recv(Key{"conf", "big.conf"}, strings.Repeat("x", 65)); a.OK || !strings.Contains(a.Error, "over the 64-byte limit") {
		t.Errorf("oversize: %+v", a)
	}
	// A symlinked file and a symlinked directory leading outside.
	if err := os.Symlink(filepath.Join(outside, "target.conf"), filepath.Join(n[0].dir, "link.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(n[0].dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if a := recv(Key{"conf", "link.conf"}, "x\n"); a.OK || !strings.Contains(a.Error, "symlink") {
		t.Errorf("symlinked file: %+v", a)
	}
	if a := recv(Key{"conf", "sub/a.conf"}, "x\n"); a.OK || !strings.Contains(a.Error, "outside the set's dir") {
		t.Errorf("symlinked dir: %+v", a)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("something was written outside: %v", ents)
	}
	// On the sending side, an oversize file and a symlink leading out are
	// reported, not sent.
	if err := os.WriteFile(filepath.Join(outside, "secret.conf"), []byte("s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n[1].write(t, "big.conf", strings.Repeat("y", 100))
	if err := os.Symlink(filepath.Join(outside, "secret.conf"), filepath.Join(n[1].dir, "leak.conf")); err != nil {
		t.Fatal(err)
	}
	n[1].e.ScanAll()
	if len(n[1].e.entries) != 0 {
		t.Fatalf("entries made for refused files: %v", n[1].e.entries)
	}
	if len(n[1].e.localErr) != 2 {
		t.Fatalf("local errors: %v", n[1].e.localErr)
	}
}

// TestRandomConcurrentEdits edits two files on both nodes at random,
// delivers the resulting messages in random order (some dropped, as
// when the stream breaks), then lets the periodic comparison finish. Both
// nodes must end identical, and every edit must survive: in the final
// file, in a conflict copy, or as the file a later edit was made on.
func TestRandomConcurrentEdits(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			n := newPair(t, nil)
			files := []string{"a.conf", "b.conf"}
			type msg struct {
				from int
				k    Key
			}
			var queue []msg
			edits := map[string]string{} // canonical content → edit id
			consumed := map[string]bool{}
			canonical := func(i int, content string) string {
				c, err := n[i].e.sets["conf"].tr.encode([]byte(content))
				if err != nil {
					t.Fatal(err)
				}
				return string(c)
			}
			for step := range 120 {
				switch r := rng.IntN(10); {
				case r < 4: // an edit
					i := rng.IntN(2)
					f := files[rng.IntN(len(files))]
					if cur, err := os.ReadFile(filepath.Join(n[i].dir, f)); err == nil {
						consumed[edits[canonical(i, string(cur))]] = true
					}
					id := fmt.Sprintf("%s/%s/%d", names[i], f, step)
					content := fmt.Sprintf("edit %s\nserver %s:80\n", id, addrs[i])
					n[i].write(t, f, content)
					edits[canonical(i, content)] = id
					if rng.IntN(4) > 0 { // mostly scanned at once, as the watcher would
						for _, k := range n[i].e.ScanAll() {
							queue = append(queue, msg{i, k})
						}
					}
				case r < 9 && len(queue) > 0: // deliver one, in any order
					j := rng.IntN(len(queue))
					m := queue[j]
					queue = append(queue[:j], queue[j+1:]...)
					if _, back := send(t, n[m.from], n[1-m.from], m.k); back {
						queue = append(queue, msg{1 - m.from, m.k})
					}
				case len(queue) > 0: // the stream broke: drop one
					j := rng.IntN(len(queue))
					queue = append(queue[:j], queue[j+1:]...)
				}
			}
			syncAll(t, n)
			kept := map[string]bool{}
			for _, f := range files {
				c0, c1 := canonical(0, n[0].read(f)), canonical(1, n[1].read(f))
				if c0 != c1 {
					t.Fatalf("%s differs after sync:\n%q\n%q", f, n[0].read(f), n[1].read(f))
				}
				kept[edits[c0]] = true
				for i := range 2 {
					copies, _ := filepath.Glob(filepath.Join(n[i].dir, f+".baton-conflict-*"))
					for _, cp := range copies {
						b, _ := os.ReadFile(cp)
						kept[edits[canonical(i, string(b))]] = true
					}
				}
			}
			for c, id := range edits {
				if !kept[id] && !consumed[id] {
					t.Errorf("edit %s lost (content %q)", id, c)
				}
			}
			for i := range 2 {
				for k, en := range n[i].e.entries {
					other := n[1-i].e.entries[k]
					if other == nil || en.VV.Compare(other.VV) != Equal || en.Hash != other.Hash {
						t.Errorf("%s: versions differ: %v %v", k, en.Meta, other)
					}
				}
			}
			conflicts := n[0].e.counts["conf"].Conflicts + n[1].e.counts["conf"].Conflicts
			if seed == 0 && conflicts == 0 {
				t.Fatal("the random schedule made no conflict: the test exercises nothing")
			}
			t.Logf("%d edits, %d conflicts resolved", len(edits), conflicts)
		})
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	n := newPair(t, nil)
	n[0].write(t, "a.conf", "one\n")
	syncAll(t, n)
	if err := n[0].e.Save(); err != nil {
		t.Fatal(err)
	}
	before := n[0].e.entries[Key{"conf", "a.conf"}].VV.Clone()
	e, err := NewEngine(EngineOptions{Config: Config{Sets: []Set{n[0].e.sets["conf"].cfg}, Substitute: map[string]string{addrs[0]: addrs[1]}},
		Node: names[0], Peer: names[1], StateDir: n[0].e.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	if ch := e.ScanAll(); len(ch) != 0 {
		t.Fatalf("an unchanged file counted as an edit after restart: %v", ch)
	}
	if got := e.entries[Key{"conf", "a.conf"}].VV; got.Compare(before) != Equal {
		t.Fatalf("version %v, want %v", got, before)
	}
}
