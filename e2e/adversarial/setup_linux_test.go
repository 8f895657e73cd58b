package adversarial

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/pki"
	"github.com/batonha/baton/internal/sessionsync"
)

// Addresses and ports of the attacked pair.
const (
	malloryAddr = "10.100.1.66"
	apiPort     = 9443
	uiPort      = 9444
	metricsPort = 9108
	linkPort    = 5407
	maxEntries  = 1000
	maxFileSize = 64 << 10
	interval    = 100 * time.Millisecond
)

// batonBin is $E2E_BIN (make sets it) or a binary built for the test.
func batonBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("E2E_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "baton")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/baton")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building baton: %v\n%s", err, b)
	}
	return out
}

// suite is the attacked pair and the attacker's namespace.
type suite struct {
	t       *testing.T
	p       *lab.Pair
	mallory *lab.Host
	nodes   [2]*lab.BatonNode
	bin     string
	base    string
	pki     string
	sets    [2]string // each node's synced directory
	outside string    // a directory outside every set (symlink targets)
	keyFile string
	token   string
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	labtest.RequireRoot(t)
	s := &suite{t: t, bin: batonBin(t), base: t.TempDir()}
	p, err := lab.NewPair(lab.RandomPrefix(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	s.p = p
	if s.mallory, err = p.AddHost("mallory"); err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(s.mallory, "eth0", "front", malloryAddr+"/24"); err != nil {
		t.Fatal(err)
	}
	s.pki = filepath.Join(s.base, "pki")
	if err := pki.Generate(s.pki, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	s.outside = filepath.Join(s.base, "outside")
	if err := os.MkdirAll(s.outside, 0o755); err != nil {
		t.Fatal(err)
	}
	s.write(s.outside, "secret.txt", "outside every set\n")
	s.token = "adversarial-suite-api-token-0123456789"
	tokFile := filepath.Join(s.base, "api.token")
	if err := os.WriteFile(tokFile, []byte(s.token), 0o600); err != nil {
		t.Fatal(err)
	}
	var opts [2]lab.NodeOptions
	for i := range opts {
		opts[i] = lab.NodeOptions{Priority: 200 - 100*i, Interval: interval, Misses: 5, MetricsListen: fmt.Sprintf(":%d", metricsPort)}
	}
	nodes, err := lab.SetupBatonNodes(p, s.base, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.nodes = nodes
	s.keyFile = filepath.Join(s.base, "heartbeat.key")
	for i, n := range nodes {
		name := lab.ApplianceName(i)
		s.sets[i] = filepath.Join(n.Dir, "conf")
		s.write(s.sets[i], "rules.conf", "rule 1\n")
		s.write(s.sets[i], "local-secret.conf", "per-node secret of "+name+"\n")
		s.write(s.sets[i], "notes.txt", "not synced\n")
		if err := os.Symlink(s.outside, filepath.Join(s.sets[i], "out")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(s.outside, "secret.txt"), filepath.Join(s.sets[i], "leak.conf")); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		cfg := strings.Replace(string(b), "api:\n", fmt.Sprintf("api:\n  listen: \":%d\"\n  token_file: %q\n", apiPort, tokFile), 1)
		cfg += fmt.Sprintf(`ui:
  listen: ":%d"
link:
  listen: ":%d"
  address: "%s:%d"
  ca_file: %q
  cert_file: %q
  key_file: %q
sync:
  interval: 2s
  debounce: 50ms
  max_file_size: %d
  sets:
    - name: conf
      dir: %q
      files: ["*.conf", "*/*.conf"]
      exclude: ["local-*.conf"]
sessions:
  strategy: commit
  zones: [0]
  max_entries: %d
`, uiPort, linkPort, lab.HBAddr(1-i), linkPort, filepath.Join(s.pki, "ca.crt"), filepath.Join(s.pki, name+".crt"),
			filepath.Join(s.pki, name+".key"), maxFileSize, s.sets[i], maxEntries)
		if err := os.WriteFile(n.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range s.nodes {
				b, _ := os.ReadFile(n.LogPath)
				lines := strings.Split(string(b), "\n")
				var roles []string
				for _, l := range lines {
					if strings.Contains(l, `"role changed"`) || strings.Contains(l, `"peer dead"`) || strings.Contains(l, `"path down"`) {
						roles = append(roles, l)
					}
				}
				t.Logf("--- %s role changes and lost paths ---\n%s", lab.ApplianceName(n.Index), strings.Join(roles, "\n"))
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("--- %s log (tail) ---\n%s", lab.ApplianceName(n.Index), strings.Join(lines, "\n"))
			}
		}
	})
	return s
}

func (s *suite) write(dir, name, content string) {
	s.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) start(i int) {
	s.t.Helper()
	if err := s.nodes[i].Start(s.bin); err != nil {
		s.t.Fatal(err)
	}
	n := s.nodes[i]
	s.t.Cleanup(func() {
		if n.Running() {
			_ = n.Proc.Signal(syscall.SIGKILL)
			_ = n.Proc.Wait()
		}
	})
}

func (s *suite) kill(i int) {
	s.t.Helper()
	if err := s.nodes[i].Proc.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.nodes[i].Proc.Done():
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s did not die", lab.ApplianceName(i))
	}
}

// sock is node i's API socket: the suite reads status, sessions and
// metrics there, never through a flooded listener.
func (s *suite) sock(i int) string { return filepath.Join(s.nodes[i].Dir, "baton.sock") }

// status reads node i's status on a connection of its own (a client
// keeping idle connections would fill the socket's cap of 128).
func (s *suite) status(i int) (api.Status, error) {
	var st api.Status
	err := s.getJSON(i, "/v1/status", &st)
	return st, err
}

func (s *suite) role(i int) string {
	if !s.nodes[i].Running() {
		return "DEAD"
	}
	st, err := s.status(i)
	if err != nil {
		return "?"
	}
	return st.Role
}

func (s *suite) getJSON(i int, path string, v any) error {
	sock := s.sock(i)
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	resp, err := hc.Get("http://baton" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if v == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if path == "/metrics" {
		b, err := io.ReadAll(resp.Body)
		*(v.(*string)) = string(b)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metric sums node i's samples of the series named by prefix (a name
// with some of its labels, such as `baton_listener_dropped_total{listener="api"}`).
func (s *suite) metric(i int, series string) float64 {
	var body string
	if err := s.getJSON(i, "/metrics", &body); err != nil {
		return -1
	}
	name, labels, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		id := line[:sp]
		n, l, _ := strings.Cut(strings.TrimSuffix(id, "}"), "{")
		if n != name || (labels != "" && !strings.Contains(","+l+",", ","+labels+",")) {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func (s *suite) sessions(i int) (sessionsync.Status, error) {
	var st sessionsync.Status
	err := s.getJSON(i, "/v1/sessions", &st)
	return st, err
}

// eventually polls cond until it holds or limit passes.
func eventually(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logCount counts the lines of node i's log containing every one of subs.
func (s *suite) logCount(i int, subs ...string) int {
	f, err := os.Open(s.nodes[i].LogPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		for _, sub := range subs {
			if !strings.Contains(sc.Text(), sub) {
				continue next
			}
		}
		n++
	}
	return n
}

// snapshot is what no attack may change: both nodes' roles and terms,
// every file under the test's directory (sets, state, outside), and both
// nodes' kernel routes.
type snapshot struct {
	roles  [2]string
	terms  [2]uint64
	files  map[string]string
	routes [2]string
}

func (s *suite) snap() snapshot {
	var sn snapshot
	for i := range 2 {
		if st, err := s.status(i); err == nil {
			sn.roles[i], sn.terms[i] = st.Role, st.Term
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, _ := s.nodes[i].Host.Run(ctx, "ip", "-4", "route", "show", "table", "all")
		cancel()
		sn.routes[i] = string(out)
	}
	sn.files = map[string]string{}
	for _, dir := range []string{s.sets[0], s.sets[1], s.outside, s.base} {
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if fi.IsDir() && (strings.HasSuffix(p, "/state") || p == s.pki) {
				return filepath.SkipDir // the daemons' own state changes on its own
			}
			if strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".sock") || (fi.IsDir() && p != dir) {
				return nil
			}
			v := fi.Mode().String()
			if fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				h := sha256.Sum256(b)
				v += " " + hex.EncodeToString(h[:8])
			} else if fi.Mode()&os.ModeSymlink != 0 {
				l, _ := os.Readlink(p)
				v += " -> " + l
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				v += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
			}
			sn.files[p] = v
			return nil
		})
	}
	return sn
}

// diff says what changed from a to b, "" for nothing.
func (a snapshot) diff(b snapshot) string {
	var out []string
	for i := range 2 {
		if a.roles[i] != b.roles[i] || a.terms[i] != b.terms[i] {
			out = append(out, fmt.Sprintf("%s: role %s term %d -> %s term %d", lab.ApplianceName(i), a.roles[i], a.terms[i], b.roles[i], b.terms[i]))
		}
		if a.routes[i] != b.routes[i] {
			out = append(out, fmt.Sprintf("%s: routes %q -> %q", lab.ApplianceName(i), a.routes[i], b.routes[i]))
		}
	}
	var keys []string
	for k := range a.files {
		keys = append(keys, k)
	}
	for k := range b.files {
		if _, ok := a.files[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a.files[k] != b.files[k] {
			out = append(out, fmt.Sprintf("%s: %q -> %q", k, a.files[k], b.files[k]))
		}
	}
	return strings.Join(out, "; ")
}

// link returns a peer link as node `as` (its certificate stolen), to
// dial the other node at addr; certDir holds the certificates.
func (s *suite) link(as, peer, addr, certDir string) (*peerlink.Link, error) {
	return peerlink.New(peerlink.Config{Node: as, Peer: peer, Address: addr,
		CAFile: filepath.Join(certDir, "ca.crt"), CertFile: filepath.Join(certDir, as+".crt"), KeyFile: filepath.Join(certDir, as+".key")})
}

// dialStream opens a stream from mallory's namespace.
func (s *suite) dialStream(l *peerlink.Link, service string) (*peerlink.Stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st *peerlink.Stream
	err := s.mallory.Do(func() error {
		var err error
		st, err = l.Dial(ctx, service)
		return err
	})
	return st, err
}

// csFrame is a config sync frame payload: header length, JSON, content.
func csFrame(hdr any, body []byte) []byte {
	h, _ := json.Marshal(hdr)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(h)))
	out = append(out, h...)
	return append(out, body...)
}

func csDecode(p []byte, v any) ([]byte, error) {
	if len(p) < 4 {
		return nil, errors.New("short frame")
	}
	n := binary.BigEndian.Uint32(p)
	if int(n) > len(p)-4 {
		return nil, errors.New("bad header length")
	}
	return p[4+n:], json.Unmarshal(p[4:4+n], v)
}

func hashOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
