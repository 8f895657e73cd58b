package configsync

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A key from the wire (a get, a want) naming a file outside the set's
// patterns, or excluded, is neither read nor tracked.
func TestOutgoingReadsOnlySetFiles(t *testing.T) {
	n := newPair(t, nil)
	n[1].write(t, "local-secret.conf", "per-node secret\n")
	n[1].write(t, "notes.txt", "not synced\n")
	n[1].write(t, "a.conf", "synced\n")
	for _, rel := range []string{"local-secret.conf", "notes.txt", "../state/state.json", "/etc/passwd", "sub/../local-secret.conf"} {
		h, content, ok, err := n[1].e.Outgoing(Key{"conf", rel})
		if ok || content != nil || !errors.Is(err, ErrRefused) {
			t.Errorf("Outgoing(%q) = %+v, %q, %v, %v; want refused", rel, h, content, ok, err)
		}
		if _, tracked := n[1].e.entries[Key{"conf", rel}]; tracked {
			t.Errorf("%q is now tracked", rel)
		}
	}
	// Each refused read is counted: a peer probing for secrets shows.
	if got := n[1].e.counts["conf"].Failures; got != 5 {
		t.Errorf("refused reads counted %d times, want 5", got)
	}
	if _, _, _, err := n[1].e.Outgoing(Key{"no-such-set", "a.conf"}); !errors.Is(err, ErrRefused) {
		t.Errorf("a key of an unknown set: %v", err)
	}
	// A symlink leading out is refused and counted at every request, not
	// only when a scan first meets it.
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(n[1].dir, "leak.conf")); err != nil {
		t.Fatal(err)
	}
	before := n[1].e.counts["conf"].Failures
	for range 2 {
		if _, content, ok, err := n[1].e.Outgoing(Key{"conf", "leak.conf"}); ok || content != nil || !errors.Is(err, ErrRefused) {
			t.Errorf("Outgoing(leak.conf) = %q, %v, %v; want refused", content, ok, err)
		}
	}
	if got := n[1].e.counts["conf"].Failures - before; got < 2 {
		t.Errorf("two requests for a symlink leading out counted %d times", got)
	}
	if _, content, ok, err := n[1].e.Outgoing(Key{"conf", "a.conf"}); !ok || err != nil || string(content) != "synced\n" {
		t.Fatalf("a set file is not sent: %q %v %v", content, ok, err)
	}
}

// Node names from the wire name conflict copies: a forged one is
// refused before anything is written.
func TestForgedNodeNamesRefused(t *testing.T) {
	n := newPair(t, nil)
	n[0].write(t, "a.conf", "mine\n")
	n[0].e.ScanAll()
	outside := filepath.Dir(n[0].dir)
	before, _ := os.ReadDir(outside)
	for _, h := range []fileHeader{
		{Key: Key{"conf", "a.conf"}, Meta: Meta{VV: VV{"nva-b": 1}, Hash: hashOf([]byte("theirs\n")), Node: "../../evil", Mode: 0o644}},
		{Key: Key{"conf", "a.conf"}, Meta: Meta{VV: VV{"nva-b": 1}, Hash: hashOf([]byte("theirs\n")), Node: "nva-b", Mode: 0o644,
			Conf: &Conflict{Loser: "/../../evil", LoserHash: "x"}}},
	} {
		a, _ := n[0].e.Receive(context.Background(), h, []byte("theirs\n"))
		if a.OK || !strings.Contains(a.Error, "neither nva-a nor nva-b") {
			t.Errorf("forged %q/%+v: ack %+v", h.Node, h.Conf, a)
		}
	}
	after, _ := os.ReadDir(outside)
	ents, _ := os.ReadDir(n[0].dir)
	if len(after) != len(before) || len(ents) != 1 || n[0].read("a.conf") != "mine\n" {
		t.Fatalf("something was written: outside %v → %v, set dir %v", before, after, ents)
	}
}

// receiveNew delivers a version from nva-b newer than nva-a's.
func receiveNew(t *testing.T, e *Engine, rel, content string, mode uint32, uid int) ack {
	t.Helper()
	e.ScanAll()
	vv := VV{"nva-b": 1}
	if en := e.entries[Key{"conf", rel}]; en != nil {
		vv = en.VV.Merge(vv)
	}
	h := fileHeader{Key: Key{"conf", rel}, Meta: Meta{VV: vv, Hash: hashOf([]byte(content)), Node: "nva-b", Mode: mode, UID: uid, GID: uid}}
	a, _ := e.Receive(context.Background(), h, []byte(content))
	if !a.OK {
		t.Fatalf("receiving %s: %+v", rel, a)
	}
	return a
}

func statOwner(t *testing.T, p string) (os.FileMode, int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm(), metaOf(fi).UID
}

// The peer's mode and owner are never applied as-is: a new file loses
// group and world write and is baton's own, a replaced file keeps its
// mode and owner, a set's configured mode and owner win.
func TestReceivedModeAndOwnerAreLocal(t *testing.T) {
	n := newPair(t, nil)
	self := os.Geteuid()
	receiveNew(t, n[0].e, "new.conf", "x\n", 0o4777, 4242)
	if mode, uid := statOwner(t, filepath.Join(n[0].dir, "new.conf")); mode != 0o755 || uid != self {
		t.Errorf("new file from a 04777 peer file owned by 4242: mode %#o owner %d, want 0755 and %d", mode, uid, self)
	}
	n[0].write(t, "kept.conf", "old\n")
	if err := os.Chmod(filepath.Join(n[0].dir, "kept.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	receiveNew(t, n[0].e, "kept.conf", "new\n", 0o666, 4242)
	if mode, uid := statOwner(t, filepath.Join(n[0].dir, "kept.conf")); mode != 0o600 || uid != self || n[0].read("kept.conf") != "new\n" {
		t.Errorf("replaced 0600 file: mode %#o owner %d content %q", mode, uid, n[0].read("kept.conf"))
	}
	// The next scan sees no local edit: mode and owner are per node.
	if ch := n[0].e.ScanAll(); len(ch) != 0 {
		t.Errorf("receiving made local versions: %v", ch)
	}

	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("looking up nobody: %v", err)
	}
	m := newPair(t, func(c *Config) { c.Sets[0].Mode = "0640"; c.Sets[0].Owner = "nobody" })
	receiveNew(t, m[0].e, "conf.conf", "y\n", 0o666, 0)
	mode, uid := statOwner(t, filepath.Join(m[0].dir, "conf.conf"))
	want := self
	if self == 0 {
		want, _ = strconv.Atoi(nobody.Uid)
	}
	if mode != 0o640 || uid != want {
		t.Errorf("configured 0640 nobody: mode %#o owner %d, want owner %d", mode, uid, want)
	}
}

// A chown the sandbox denies (EPERM) is a warning; another error fails,
// and a chown is only tried when the owner differs.
func TestChownOnlyWhenDifferentEPERMWarns(t *testing.T) {
	n := newPair(t, nil)
	p := filepath.Join(n[0].dir, "f.conf")
	n[0].write(t, "f.conf", "x\n")
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	m := metaOf(fi)
	calls := 0
	chmod := func(os.FileMode) error { return nil }
	chownErr := func(e error) func(int, int) error { return func(int, int) error { calls++; return e } }
	same := attrs{mode: os.FileMode(m.Mode), uid: m.UID, gid: m.GID}
	if err := n[0].e.applyAttrs(p, fi, same, chmod, chownErr(syscall.EIO)); err != nil || calls != 0 {
		t.Fatalf("same owner: err %v, %d chown calls", err, calls)
	}
	other := attrs{mode: os.FileMode(m.Mode), uid: m.UID + 1, gid: m.GID}
	if err := n[0].e.applyAttrs(p, fi, other, chmod, chownErr(syscall.EPERM)); err != nil || calls != 1 {
		t.Fatalf("EPERM: err %v, %d chown calls", err, calls)
	}
	if err := n[0].e.applyAttrs(p, fi, other, chmod, chownErr(syscall.EIO)); err == nil {
		t.Fatal("EIO from chown ignored")
	}
}

// A local I/O error is not a verdict on the file: it is not stored as a
// refusal, and the same version is tried again.
func TestLocalErrorIsNotARefusal(t *testing.T) {
	n := newPair(t, nil)
	rel := strings.Repeat("a", 300) + ".conf" // over NAME_MAX: the file system fails
	h := fileHeader{Key: Key{"conf", rel}, Meta: Meta{VV: VV{"nva-b": 1}, Hash: hashOf([]byte("x\n")), Node: "nva-b", Mode: 0o644}}
	for range 2 {
		a, _ := n[0].e.Receive(context.Background(), h, []byte("x\n"))
		if a.OK || !strings.Contains(a.Error, "file name too long") {
			t.Fatalf("ack %+v", a)
		}
	}
	if en := n[0].e.entries[h.Key]; en != nil && en.Refused != nil {
		t.Fatalf("local error stored as a refusal: %+v", en.Refused)
	}
	kinds := 0
	for _, ev := range n[0].e.events {
		if ev.Kind == "local_error" {
			kinds++
		}
	}
	if kinds != 2 {
		t.Fatalf("events %+v, want two local_error", n[0].e.events)
	}
}

// Set names from the peer do not become metric labels.
func TestUnknownSetNamesShareOneLabel(t *testing.T) {
	n := newPair(t, nil)
	met, err := newMetrics(prometheus.NewRegistry(), func() Status { return Status{} })
	if err != nil {
		t.Fatal(err)
	}
	n[0].e.met = met
	for i := range 100 {
		h := fileHeader{Key: Key{"x" + strconv.Itoa(i), "a.conf"}, Meta: Meta{VV: VV{"nva-b": 1}, Node: "nva-b"}}
		n[0].e.Receive(context.Background(), h, nil)
	}
	if c := testutil.CollectAndCount(met.failuresC); c != 1 {
		t.Fatalf("%d failure series for 100 unknown sets, want 1", c)
	}
	if v := testutil.ToFloat64(met.failuresC.WithLabelValues(unknownSetLabel, "refused")); v != 100 {
		t.Fatalf("unknown-set failures %v", v)
	}
}

// A per-node line matching an empty line, first in the file, with more
// per-node lines than placeholders: this once indexed out[-1].
func TestDecodeExtraLocalsAtStart(t *testing.T) {
	tr, err := newTransform("nva-a", "nva-b", nil, []string{`^(hostname .*)?$`})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tr.decode([]byte(placeholder), []byte("\nhostname x\n"))
	if err != nil || string(got) != "hostname x\n" {
		t.Fatalf("decode: %q %v", got, err)
	}
}

// FuzzTransform: decode never panics, and on either node a file that
// encodes decodes back to itself, and to the same canonical form on the
// other node.
func FuzzTransform(f *testing.F) {
	for _, s := range [][2]string{
		{"hostname a\nallow 10.0.1.4\n", "hostname b\n"},
		{"\nhostname x\n", placeholder},
		{"10.0.1.4:80 10.0.1.5\n\n", "\n\n\n"},
		{"x", ""},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	subst := map[string]string{"10.0.1.4": "10.0.1.5", "nva-a": "nva-b"}
	local := []string{`^(hostname .*)?$`}
	a, err := newTransform("nva-a", "nva-b", subst, local)
	if err != nil {
		f.Fatal(err)
	}
	b, err := newTransform("nva-b", "nva-a", map[string]string{"10.0.1.5": "10.0.1.4", "nva-b": "nva-a"}, local)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, x, other []byte) {
		for _, dir := range [][2]*transform{{a, b}, {b, a}} {
			from, to := dir[0], dir[1]
			_, _ = to.decode(x, other) // arbitrary input from the wire
			c, err := from.encode(x)
			if err != nil {
				continue
			}
			back, err := from.decode(c, x)
			if err != nil || !bytes.Equal(back, x) {
				t.Fatalf("round trip of %q gave %q (%v)", x, back, err)
			}
			y, err := to.decode(c, other)
			if err != nil {
				continue
			}
			if _, err := to.encode(y); err != nil && !errors.Is(err, ErrNotReversible) {
				t.Fatalf("%q decoded on the peer to %q, which does not encode: %v", x, y, err)
			}
		}
	})
}
