package configsync

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/pki"
)

// liveNode is a Syncer on a real peer link over loopback.
type liveNode struct {
	s    *Syncer
	link *peerlink.Link
	dir  string
}

func startLive(t *testing.T, pkiDir, root string, i int, peerAddr string, ln **peerlink.Link) *liveNode {
	t.Helper()
	l, err := peerlink.New(peerlink.Config{Node: names[i], Peer: names[1-i], Listen: "127.0.0.1:0", Address: peerAddr,
		CAFile: filepath.Join(pkiDir, "ca.crt"), CertFile: filepath.Join(pkiDir, names[i]+".crt"), KeyFile: filepath.Join(pkiDir, names[i]+".key")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{}
	cfg.SetDefaults()
	cfg.Debounce = 20 * time.Millisecond
	cfg.Substitute = map[string]string{addrs[i]: addrs[1-i]}
	dir := filepath.Join(root, names[i], "etc")
	cfg.Sets = []Set{{Name: "conf", Dir: dir, Files: []string{"*.conf"}}}
	s, err := New(Options{Config: cfg, Node: names[i], Peer: names[1-i], StateDir: filepath.Join(root, names[i]), Link: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	*ln = l
	return &liveNode{s: s, link: l, dir: dir}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestSyncOverPeerLink runs two syncers over real mutual-TLS streams with
// real inotify: an edit propagates at once, both ways, and a stream from a
// certificate that is not the peer's writes nothing.
func TestSyncOverPeerLink(t *testing.T) {
	pkiDir := t.TempDir()
	if err := pki.Generate(pkiDir, []string{"nva-a", "nva-b", "mallory"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var la, lb *peerlink.Link
	b := startLive(t, pkiDir, root, 1, "127.0.0.1:1", &lb) // address fixed below
	a := startLive(t, pkiDir, root, 0, lb.Addr().String(), &la)
	// nva-b dials nva-a: rebuild its link config with a's address.
	lb2, err := peerlink.New(peerlink.Config{Node: names[1], Peer: names[0], Listen: "127.0.0.1:0", Address: la.Addr().String(),
		CAFile: filepath.Join(pkiDir, "ca.crt"), CertFile: filepath.Join(pkiDir, "nva-b.crt"), KeyFile: filepath.Join(pkiDir, "nva-b.key")})
	if err != nil {
		t.Fatal(err)
	}
	b.s.link = lb2 // dials only; b's handler stays on lb, where a dials
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 4)
	for _, f := range []func(context.Context) error{la.Run, lb.Run, a.s.Run, b.s.Run} {
		go func() { _ = f(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for range 4 {
			<-done
		}
	})

	if err := os.WriteFile(filepath.Join(a.dir, "haproxy.conf"), []byte("bind 10.0.1.4:80\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	eventually(t, "nva-a's file on nva-b", func() bool {
		return readFile(filepath.Join(b.dir, "haproxy.conf")) == "bind 10.0.1.5:80\n"
	})
	if err := os.WriteFile(filepath.Join(b.dir, "haproxy.conf"), []byte("bind 10.0.1.5:80\nbind 10.0.1.5:443\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	eventually(t, "nva-b's edit on nva-a", func() bool {
		return readFile(filepath.Join(a.dir, "haproxy.conf")) == "bind 10.0.1.4:80\nbind 10.0.1.4:443\n"
	})
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := a.s.SyncNow(sctx); err != nil {
		t.Fatal(err)
	}
	st := a.s.Status(true)
	if !st.Connected || st.Sets[0].Pending != 0 || st.Sets[0].Files != 1 || st.Sets[0].LastSync.IsZero() {
		t.Fatalf("status %+v", st)
	}
	// nva-b's edit counts once or twice: os.WriteFile truncates, then
	// writes, and a scan may fall between the two.
	fl := st.Sets[0].FileList[0]
	if fl.Peer == nil || fl.Peer.VV.Compare(fl.Local.VV) != Equal || fl.Local.VV["nva-a"] == 0 || fl.Local.VV["nva-b"] == 0 {
		t.Fatalf("versions %+v", fl)
	}
	// In step: diff shows nothing.
	diff, err := a.s.Diff(sctx)
	if err != nil || len(diff) != 0 {
		t.Fatalf("diff %+v %v", diff, err)
	}

	// A certificate from the cluster CA that is not the peer's is
	// refused by the TLS layer: nothing is written.
	m, err := peerlink.New(peerlink.Config{Node: "mallory", Peer: "nva-a", Listen: "127.0.0.1:0", Address: la.Addr().String(),
		CAFile: filepath.Join(pkiDir, "ca.crt"), CertFile: filepath.Join(pkiDir, "mallory.crt"), KeyFile: filepath.Join(pkiDir, "mallory.key")})
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := m.Dial(sctx, Service); err == nil {
		h := fileHeader{Key: Key{"conf", "evil.conf"}, Meta: Meta{VV: VV{"nva-b": 9}, Hash: hashOf([]byte("x")), Node: "nva-b", Mode: 0o644}}
		hp, _ := encodeFrame(hello{Node: "nva-b", Fingerprint: a.s.eng.Fingerprint()}, nil)
		fp, _ := encodeFrame(h, []byte("x"))
		_ = ms.Send(msgHello, hp)
		_ = ms.Send(msgFile, fp)
		_, _, rerr := ms.Recv()
		ms.Close()
		if rerr == nil {
			t.Fatal("a stream from a non-peer certificate must be closed")
		}
	}
	if _, err := os.Stat(filepath.Join(a.dir, "evil.conf")); !os.IsNotExist(err) {
		t.Fatal("a non-peer wrote a file")
	}
}
