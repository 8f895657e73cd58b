package adversarial

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/pki"
	"github.com/batonha/baton/internal/provider/conntrack"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/sessionsync"
)

// Config sync message types (internal/configsync/wire.go).
const (
	msgHello    = 1
	msgIndex    = 2
	msgFile     = 3
	msgAck      = 5
	msgIndexReq = 6
	msgGet      = 7
)

type csKey struct {
	Set  string `json:"set"`
	Path string `json:"path"`
}

type csConflict struct {
	Loser     string `json:"loser"`
	LoserHash string `json:"loser_hash"`
	At        int64  `json:"at"`
}

type csHeader struct {
	Set     string            `json:"set"`
	Path    string            `json:"path"`
	VV      map[string]uint64 `json:"vv"`
	Hash    string            `json:"hash,omitempty"`
	At      int64             `json:"at"`
	Node    string            `json:"node"`
	Deleted bool              `json:"deleted,omitempty"`
	Size    int64             `json:"size"`
	Mode    uint32            `json:"mode"`
	UID     int               `json:"uid"`
	GID     int               `json:"gid"`
	Conf    *csConflict       `json:"conflict,omitempty"`
	Sent    int64             `json:"sent"`
}

type csAck struct {
	OK      bool   `json:"ok"`
	Applied bool   `json:"applied"`
	Error   string `json:"error"`
}

type csHello struct {
	Node        string `json:"node"`
	Fingerprint string `json:"fingerprint"`
	Error       string `json:"error,omitempty"`
}

// csPeer is mallory speaking config sync to nva-a with nva-b's stolen
// certificate.
type csPeer struct {
	s   *suite
	l   *peerlink.Link
	fp  string
	ver uint64
}

func (c *csPeer) open(node, fp string) (*peerlink.Stream, csHello, error) {
	st, err := c.s.dialStream(c.l, "configsync")
	if err != nil {
		return nil, csHello{}, err
	}
	if err := st.Send(msgHello, csFrame(csHello{Node: node, Fingerprint: fp}, nil)); err != nil {
		st.Close()
		return nil, csHello{}, err
	}
	_ = st.SetDeadline(time.Now().Add(5 * time.Second))
	typ, p, err := st.Recv()
	if err != nil || typ != msgHello {
		st.Close()
		return nil, csHello{}, fmt.Errorf("hello answered with %d: %v", typ, err)
	}
	var h csHello
	if _, err := csDecode(p, &h); err != nil {
		st.Close()
		return nil, h, err
	}
	return st, h, nil
}

// push sends one file and returns the ack.
func (c *csPeer) push(h csHeader, body []byte) (csAck, error) {
	st, hello, err := c.open("nva-b", c.fp)
	if err != nil {
		return csAck{}, err
	}
	defer st.Close()
	if hello.Error != "" {
		return csAck{}, errors.New(hello.Error)
	}
	c.ver++
	if h.VV == nil {
		h.VV = map[string]uint64{"nva-b": 1000 + c.ver}
	}
	if h.Set == "" {
		h.Set = "conf"
	}
	if h.Node == "" {
		h.Node = "nva-b"
	}
	if h.Hash == "" {
		h.Hash = hashOf(body)
	}
	if h.Mode == 0 {
		h.Mode = 0o644
	}
	h.At, h.Sent, h.Size = time.Now().UnixNano(), time.Now().UnixNano(), int64(len(body))
	if err := st.Send(msgFile, csFrame(h, body)); err != nil {
		return csAck{}, err
	}
	typ, p, err := st.Recv()
	if err != nil || typ != msgAck {
		return csAck{}, fmt.Errorf("file answered with %d: %v", typ, err)
	}
	var a csAck
	_, err = csDecode(p, &a)
	return a, err
}

// get asks for a file as `baton sync diff` does; it returns what came.
func (c *csPeer) get(k csKey) (csHeader, []byte, error) {
	st, _, err := c.open("nva-b", c.fp)
	if err != nil {
		return csHeader{}, nil, err
	}
	defer st.Close()
	if err := st.Send(msgGet, csFrame(map[string]any{"keys": []csKey{k}}, nil)); err != nil {
		return csHeader{}, nil, err
	}
	typ, p, err := st.Recv()
	if err != nil || typ != msgFile {
		return csHeader{}, nil, fmt.Errorf("get answered with %d: %v", typ, err)
	}
	var h csHeader
	body, err := csDecode(p, &h)
	return h, body, err
}

type testCase struct {
	name string
	run  func() (string, error)
	// changes: the case changes what it says (the snapshot is taken
	// again after it).
	changes bool
}

// refusedDelta runs attack and requires node i's refused-file counter to
// move by at least want.
func (s *suite) refusedDelta(i int, want float64, attack func() error) (string, error) {
	series := `baton_configsync_failures_total{kind="refused"}`
	series2 := `baton_configsync_failures_total{kind="local_error"}`
	before := s.metric(i, series) + s.metric(i, series2)
	if err := attack(); err != nil {
		return "", err
	}
	var after float64
	if !eventually(5*time.Second, func() bool { after = s.metric(i, series) + s.metric(i, series2); return after-before >= want }) {
		return "", fmt.Errorf("baton_configsync_failures_total moved %v, want %v", after-before, want)
	}
	return fmt.Sprintf("configsync_failures_total +%v", after-before), nil
}

func (s *suite) configSyncCases() []testCase {
	l, err := s.link("nva-b", "nva-a", net.JoinHostPort(lab.AFront, fmt.Sprint(linkPort)), s.pki)
	if err != nil {
		s.t.Fatal(err)
	}
	c := &csPeer{s: s, l: l}
	refusedPush := func(h csHeader, body []byte) func() (string, error) {
		return func() (string, error) {
			var a csAck
			d, err := s.refusedDelta(0, 1, func() error {
				var err error
				a, err = c.push(h, body)
				if err == nil && (a.OK || a.Applied || a.Error == "") {
					return fmt.Errorf("accepted: %+v", a)
				}
				return err
			})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("ack error %q, %s", trunc(a.Error, 60), d), nil
		}
	}
	refusedGet := func(k csKey, secret string, want float64) func() (string, error) {
		return func() (string, error) {
			var h csHeader
			var body []byte
			d, err := s.refusedDelta(0, want, func() error {
				var err error
				h, body, err = c.get(k)
				if err != nil {
					return err
				}
				if !h.Deleted || len(body) != 0 || strings.Contains(string(body), secret) {
					return fmt.Errorf("answered with %d bytes: %+v", len(body), h)
				}
				return nil
			})
			if err != nil {
				return "", err
			}
			return "answered as absent, no content, " + d, nil
		}
	}
	big := make([]byte, maxFileSize+1)
	return []testCase{
		{name: "configsync/wrong-fingerprint", run: func() (string, error) {
			before := s.logCount(0, "refusing config sync stream")
			st, h, err := c.open("nva-b", "not-the-fingerprint")
			if err != nil {
				return "", err
			}
			st.Close()
			if h.Error == "" {
				return "", errors.New("a hello with a wrong fingerprint was accepted")
			}
			c.fp = h.Fingerprint // a peer learns it so: the cases below pass the hello
			if !eventually(3*time.Second, func() bool { return s.logCount(0, "refusing config sync stream") > before }) {
				return "", errors.New("no log of the refusal")
			}
			return "hello refused, logged", nil
		}},
		{name: "configsync/wrong-node-hello", run: func() (string, error) {
			before := s.logCount(0, "refusing config sync stream")
			st, h, err := c.open("mallory", c.fp)
			if err != nil {
				return "", err
			}
			st.Close()
			if h.Error == "" {
				return "", errors.New("a hello naming a stranger was accepted")
			}
			if !eventually(3*time.Second, func() bool { return s.logCount(0, "refusing config sync stream") > before }) {
				return "", errors.New("no log of the refusal")
			}
			return "hello refused, logged", nil
		}},
		{name: "configsync/push-excluded", run: refusedPush(csHeader{Path: "local-secret.conf"}, []byte("overwritten\n"))},
		{name: "configsync/push-unmatched", run: refusedPush(csHeader{Path: "notes.txt"}, []byte("overwritten\n"))},
		{name: "configsync/push-dotdot", run: refusedPush(csHeader{Path: "../baton.yaml"}, []byte("node: {}\n"))},
		{name: "configsync/push-dotdot-nested", run: refusedPush(csHeader{Path: "sub/../../evil.conf"}, []byte("evil\n"))},
		{name: "configsync/push-absolute", run: refusedPush(csHeader{Path: filepath.Join(s.outside, "evil.conf")}, []byte("evil\n"))},
		{name: "configsync/push-symlink-dir", run: refusedPush(csHeader{Path: "out/evil.conf"}, []byte("evil\n"))},
		{name: "configsync/push-symlink-file", run: refusedPush(csHeader{Path: "leak.conf"}, []byte("evil\n"))},
		{name: "configsync/push-oversized-file", run: refusedPush(csHeader{Path: "big.conf"}, big)},
		{name: "configsync/push-bad-hash", run: refusedPush(csHeader{Path: "rules.conf", Hash: hashOf([]byte("other"))}, []byte("rule 666\n"))},
		{name: "configsync/push-forged-node", run: refusedPush(csHeader{Path: "rules.conf", Node: "../../evil"}, []byte("rule 666\n"))},
		{name: "configsync/push-forged-conflict", run: refusedPush(csHeader{Path: "rules.conf",
			Conf: &csConflict{Loser: "/../../evil", LoserHash: "x"}}, []byte("rule 666\n"))},
		{name: "configsync/push-unknown-set", run: func() (string, error) {
			d, err := refusedPush(csHeader{Set: "set-mallory-invented", Path: "a.conf"}, []byte("x\n"))()
			if err != nil {
				return "", err
			}
			if v := s.metric(0, `baton_configsync_failures_total{set="set-mallory-invented"}`); v != 0 {
				return "", errors.New("the peer's set name became a metric label")
			}
			return d + ", no new label", nil
		}},
		{name: "configsync/get-excluded", run: refusedGet(csKey{"conf", "local-secret.conf"}, "per-node secret", 1)},
		{name: "configsync/get-unmatched", run: refusedGet(csKey{"conf", "notes.txt"}, "not synced", 1)},
		{name: "configsync/get-dotdot", run: refusedGet(csKey{"conf", "../baton.yaml"}, "heartbeat", 1)},
		{name: "configsync/get-absolute", run: refusedGet(csKey{"conf", filepath.Join(s.outside, "secret.txt")}, "outside", 1)},
		{name: "configsync/get-symlink-file", run: refusedGet(csKey{"conf", "leak.conf"}, "outside", 1)},
		{name: "configsync/get-symlink-dir", run: refusedGet(csKey{"conf", "out/x.conf"}, "outside", 1)},
		{name: "configsync/oversized-frame", run: func() (string, error) {
			fat, err := peerlink.New(peerlink.Config{Node: "nva-b", Peer: "nva-a", Address: net.JoinHostPort(lab.AFront, fmt.Sprint(linkPort)),
				CAFile: filepath.Join(s.pki, "ca.crt"), CertFile: filepath.Join(s.pki, "nva-b.crt"), KeyFile: filepath.Join(s.pki, "nva-b.key"),
				MaxFrame: 64 << 20})
			if err != nil {
				return "", err
			}
			fc := &csPeer{s: s, l: fat, fp: c.fp}
			return s.refusedDelta(0, 1, func() error {
				st, _, err := fc.open("nva-b", c.fp)
				if err != nil {
					return err
				}
				defer st.Close()
				_ = st.Send(msgFile, make([]byte, peerlink.MaxFrame+1))
				_ = st.SetDeadline(time.Now().Add(5 * time.Second))
				if _, _, err := st.Recv(); err == nil {
					return errors.New("the stream stayed open after a frame over the limit")
				}
				return nil
			})
		}},
		{name: "configsync/mode-0666-owner-4242", changes: true, run: func() (string, error) {
			before := s.metric(0, `baton_configsync_applied_total`)
			a, err := c.push(csHeader{Path: "rules.conf", Mode: 0o666, UID: 4242, GID: 4242}, []byte("rule 2\n"))
			if err != nil {
				return "", err
			}
			if !a.OK {
				return "", fmt.Errorf("the edit itself was refused: %+v", a)
			}
			p := filepath.Join(s.sets[0], "rules.conf")
			fi, err := os.Stat(p)
			if err != nil {
				return "", err
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm() != 0o644 || st.Uid != 0 || st.Gid != 0 {
				return "", fmt.Errorf("%s is %v %d:%d after a peer sent 0666 4242:4242", p, fi.Mode().Perm(), st.Uid, st.Gid)
			}
			if s.metric(0, `baton_configsync_applied_total`) <= before {
				return "", errors.New("applied_total did not move")
			}
			// The edit travels on to the real nva-b: wait for the pair to agree.
			if !eventually(10*time.Second, func() bool {
				b, _ := os.ReadFile(filepath.Join(s.sets[1], "rules.conf"))
				return string(b) == "rule 2\n"
			}) {
				return "", errors.New("the pair did not converge")
			}
			return "content applied with the receiver's 0644 root:root (0666 4242:4242 refused), applied_total moved", nil
		}},
	}
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *suite) linkCases() []testCase {
	addrA := net.JoinHostPort(lab.AFront, fmt.Sprint(linkPort))
	dropped := func(f func() error) (string, error) {
		before := s.metric(0, `baton_listener_dropped_total{listener="link"}`)
		if err := f(); err != nil {
			return "", err
		}
		var after float64
		if !eventually(5*time.Second, func() bool {
			after = s.metric(0, `baton_listener_dropped_total{listener="link"}`)
			return after > before
		}) {
			return "", errors.New("baton_listener_dropped_total{listener=link} did not move")
		}
		return fmt.Sprintf("closed, listener_dropped_total{link} +%v", after-before), nil
	}
	return []testCase{
		{name: "link/wrong-node-certificate", run: func() (string, error) {
			l, err := s.link("nva-a", "nva-a", addrA, s.pki) // nva-a's own certificate, presented to nva-a
			if err != nil {
				return "", err
			}
			return dropped(func() error {
				if st, err := s.dialStream(l, "configsync"); err == nil {
					_ = st.SetDeadline(time.Now().Add(3 * time.Second))
					_, _, rerr := st.Recv()
					st.Close()
					if rerr == nil {
						return errors.New("a stream with the wrong node's certificate was served")
					}
				}
				return nil
			})
		}},
		{name: "link/foreign-ca", run: func() (string, error) {
			dir := s.t.TempDir() // outside the snapshot: the attacker's own files
			if err := pki.Generate(dir, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
				return "", err
			}
			l, err := s.link("nva-b", "nva-a", addrA, dir)
			if err != nil {
				return "", err
			}
			return dropped(func() error {
				if _, err := s.dialStream(l, "configsync"); err == nil {
					return errors.New("a certificate of a foreign CA was accepted")
				}
				return nil
			})
		}},
		{name: "link/plaintext-garbage", run: func() (string, error) {
			return dropped(func() error {
				c, err := s.mallory.DialContext(context.Background(), "tcp", addrA)
				if err != nil {
					return err
				}
				defer c.Close()
				_, _ = c.Write([]byte("GET /v1/sync HTTP/1.1\r\nHost: nva-a\r\n\r\n"))
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(make([]byte, 512))
				return nil
			})
		}},
		{name: "link/authenticated-stream-flood", run: func() (string, error) {
			// A peer with a valid certificate opening stream after stream:
			// at most peerlink.DefaultMaxStreams are served at once.
			l, err := s.link("nva-b", "nva-a", addrA, s.pki)
			if err != nil {
				return "", err
			}
			fp := s.fingerprint(l)
			const n = 100
			var held []*peerlink.Stream
			defer func() {
				for _, st := range held {
					st.Close()
				}
			}()
			closed := 0
			d, err := dropped(func() error {
				for range n {
					st, err := s.dialStream(l, "configsync")
					if err != nil {
						closed++
						continue
					}
					_ = st.Send(msgHello, csFrame(csHello{Node: "nva-b", Fingerprint: fp}, nil))
					_ = st.SetDeadline(time.Now().Add(3 * time.Second))
					if _, _, err := st.Recv(); err != nil {
						closed++
						st.Close()
						continue
					}
					_ = st.SetDeadline(time.Time{})
					held = append(held, st)
				}
				if len(held) > peerlink.DefaultMaxStreams || closed < n-peerlink.DefaultMaxStreams {
					return fmt.Errorf("%d streams served, %d closed, cap %d", len(held), closed, peerlink.DefaultMaxStreams)
				}
				return nil
			})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d of %d streams served, %d closed; %s, %d fds held", len(held), n, closed, d, fdCount(s.nodes[0].Proc.PID)), nil
		}},
		{name: "link/unknown-service", run: func() (string, error) {
			l, err := s.link("nva-b", "nva-a", addrA, s.pki)
			if err != nil {
				return "", err
			}
			before := s.logCount(0, "peer link stream for unknown service")
			st, err := s.dialStream(l, "../../shell")
			if err != nil {
				return "", err
			}
			_ = st.SetDeadline(time.Now().Add(5 * time.Second))
			_, _, rerr := st.Recv()
			st.Close()
			if rerr == nil {
				return "", errors.New("an unknown service answered")
			}
			if !eventually(3*time.Second, func() bool { return s.logCount(0, "peer link stream for unknown service") > before }) {
				return "", errors.New("no log of the unknown service")
			}
			return "stream closed, logged", nil
		}},
	}
}

// fingerprint is what nva-a answers a hello with (a peer learns it so).
func (s *suite) fingerprint(l *peerlink.Link) string {
	st, err := s.dialStream(l, "configsync")
	if err != nil {
		return ""
	}
	defer st.Close()
	_ = st.Send(msgHello, csFrame(csHello{Node: "nva-b", Fingerprint: "?"}, nil))
	_ = st.SetDeadline(time.Now().Add(3 * time.Second))
	_, p, err := st.Recv()
	if err != nil {
		return ""
	}
	var h csHello
	_, _ = csDecode(p, &h)
	return h.Fingerprint
}

// sessionCases attack nva-b (the standby, the receiver) as nva-a.
func (s *suite) sessionCases() []testCase {
	l, err := s.link("nva-a", "nva-b", net.JoinHostPort(lab.BFront, fmt.Sprint(linkPort)), s.pki)
	if err != nil {
		s.t.Fatal(err)
	}
	entry := func(i int, zone uint16, src string) sessionsync.Record {
		a := netip.MustParseAddr(src).As4()
		a[2], a[3] = byte(i>>8), byte(i)
		if src == lab.AHB {
			a = netip.MustParseAddr(src).As4()
		}
		orig := conntrack.Tuple{Src: netip.AddrFrom4(a), Dst: netip.MustParseAddr(lab.ServerBack), SrcPort: uint16(1024 + i%60000), DstPort: 80}
		return sessionsync.Record{Entry: conntrack.Entry{Proto: 6, Zone: zone, Orig: orig, Reply: orig.Inverse(),
			Status: 0xe, Timeout: 3600, TCPState: 3}}
	}
	// send streams n records in batches; it returns once every batch is
	// acknowledged (or the stream closed).
	lastRedials := 0 // of the last send: each new stream may fill max_entries again
	send := func(n int, mk func(i int) sessionsync.Record, raw []byte) error {
		st, err := s.dialStream(l, sessionsync.Service)
		if err != nil {
			return err
		}
		_ = st.SetDeadline(time.Now().Add(60 * time.Second))
		if raw != nil {
			defer st.Close()
			if err := st.Send(1, raw); err != nil {
				return err
			}
			if _, _, err := st.Recv(); err == nil {
				return errors.New("a malformed batch was acknowledged")
			}
			return nil
		}
		// Paced at 250,000 entries a second: the attacker is another
		// machine, not the two cores the pair runs on (unpaced, the
		// test's own encryption starves both nodes on a loaded machine).
		// The real nva-a's stream replaces the attacker's within a second
		// or two: the attacker redials and goes on from its last
		// acknowledged batch, as a persistent one would.
		const per = 1000
		batches := (n + per - 1) / per
		pace := time.NewTicker(4 * time.Millisecond)
		defer pace.Stop()
		buf := make([]byte, 0, per*64)
		next := 0
		for redials := 0; ; redials++ {
			lastRedials = redials
			if redials > 0 {
				if redials > 60 {
					return fmt.Errorf("%d redials and batch %d of %d not acknowledged", redials, next, batches)
				}
				if st, err = s.dialStream(l, sessionsync.Service); err != nil {
					return err
				}
				_ = st.SetDeadline(time.Now().Add(60 * time.Second))
			}
			var acked atomic.Int64
			closed := make(chan struct{})
			go func(st *peerlink.Stream) {
				defer close(closed)
				for {
					_, p, err := st.Recv()
					if err != nil {
						return
					}
					if len(p) >= 8 {
						acked.Store(int64(binary.BigEndian.Uint64(p)))
					}
				}
			}(st)
			b := next
			for ; b < batches; b++ {
				<-pace.C
				buf = sessionsync.AppendBatchHeader(buf[:0], uint64(b+1), 0, min(per, n-b*per))
				for i := b * per; i < min(n, (b+1)*per); i++ {
					r := mk(i)
					buf = sessionsync.AppendRecord(buf, &r)
				}
				if err := st.Send(1, buf); err != nil {
					break
				}
			}
			if b == batches {
				deadline := time.After(30 * time.Second)
			wait:
				for acked.Load() < int64(batches) {
					select {
					case <-closed:
						break wait
					case <-deadline:
						break wait
					case <-pace.C:
					}
				}
				if acked.Load() >= int64(batches) {
					st.Close()
					return nil
				}
			}
			st.Close()
			<-closed
			next = max(next, int(acked.Load()))
		}
	}
	held := func() int {
		st, err := s.sessions(1)
		if err != nil {
			return -1
		}
		return st.Held
	}
	baseline := held()
	// After each case the real nva-a's stream comes back (the attacker's
	// replaced it) and its resync forgets what the attacker left.
	healed := func() error {
		if !eventually(15*time.Second, func() bool { return held() == baseline }) {
			return fmt.Errorf("held %d, want the real peer's %d again", held(), baseline)
		}
		return nil
	}
	ctCount := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, _ := s.nodes[1].Host.Run(ctx, "conntrack", "-C")
		return strings.TrimSpace(string(out))
	}
	filtered := func(name string, mk func(i int) sessionsync.Record) testCase {
		return testCase{name: name, run: func() (string, error) {
			before, err := s.sessions(1)
			if err != nil {
				return "", err
			}
			ct := ctCount()
			if err := send(500, mk, nil); err != nil {
				return "", err
			}
			after, err := s.sessions(1)
			if err != nil {
				return "", err
			}
			if d := after.DroppedFiltered - before.DroppedFiltered; d < 500 {
				return "", fmt.Errorf("dropped_filtered +%d, want 500", d)
			}
			if after.Held > before.Held {
				return "", fmt.Errorf("held %d -> %d", before.Held, after.Held)
			}
			if c := ctCount(); c != ct {
				return "", fmt.Errorf("nva-b's conntrack table %s -> %s entries", ct, c)
			}
			if err := healed(); err != nil {
				return "", err
			}
			return fmt.Sprintf("500 filtered on receipt, held %d, kernel table unchanged, sessions_dropped_total{filtered} +%d", after.Held, after.DroppedFiltered-before.DroppedFiltered), nil
		}}
	}
	return []testCase{
		{name: "sessions/one-million-entries", run: func() (string, error) {
			before, err := s.sessions(1)
			if err != nil {
				return "", err
			}
			ct := ctCount()
			const n = 1_000_000
			if err := send(n, func(i int) sessionsync.Record { return entry(i, 0, "10.201.0.0") }, nil); err != nil {
				return "", err
			}
			after, err := s.sessions(1)
			if err != nil {
				return "", err
			}
			if after.Held > maxEntries {
				return "", fmt.Errorf("held %d entries, over max_entries %d", after.Held, maxEntries)
			}
			// Each time the real nva-a's resync emptied the held state, the
			// attacker's next stream could fill it again.
			if d, want := after.DroppedFull-before.DroppedFull, uint64(n-maxEntries*(1+lastRedials)); d < want {
				return "", fmt.Errorf("dropped_max_entries +%d, want ≥ %d (%d redials)", d, want, lastRedials)
			}
			if c := ctCount(); c != ct {
				return "", fmt.Errorf("nva-b's conntrack table %s -> %s entries (commit strategy: nothing before a takeover)", ct, c)
			}
			if err := healed(); err != nil {
				return "", err
			}
			return fmt.Sprintf("held %d ≤ %d, sessions_dropped_total{max_entries} +%d (%d redials), kernel table unchanged",
				after.Held, maxEntries, after.DroppedFull-before.DroppedFull, lastRedials), nil
		}},
		filtered("sessions/foreign-zone", func(i int) sessionsync.Record { return entry(i, 7, "10.202.0.0") }),
		filtered("sessions/heartbeat-link-addresses", func(i int) sessionsync.Record { return entry(i, 0, lab.AHB) }),
		{name: "sessions/malformed-batch", run: func() (string, error) {
			before, err := s.sessions(1)
			if err != nil {
				return "", err
			}
			garbage := sessionsync.AppendBatchHeader(nil, 1, 0, 3)
			garbage = append(garbage, make([]byte, 60)...)
			for i := 13; i < len(garbage); i += 17 {
				garbage[i] = 9 // no such op
			}
			if err := send(0, nil, garbage); err != nil {
				return "", err
			}
			var after sessionsync.Status
			if !eventually(3*time.Second, func() bool { after, _ = s.sessions(1); return after.DecodeErrors > before.DecodeErrors }) {
				return "", errors.New("decode_errors did not move")
			}
			if err := healed(); err != nil {
				return "", err
			}
			return "stream closed, sessions_dropped_total{decode} +1", nil
		}},
	}
}

// capture reads one heartbeat nva-b sent to nva-a on front, as a host
// on the wire would.
func (s *suite) capture() ([]byte, error) {
	var payload []byte
	err := s.nodes[0].Host.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName(lab.IfFront)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		buf := make([]byte, 2048)
		src := netip.MustParseAddr(lab.BFront).As4()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 28 {
				continue
			}
			ihl := int(buf[0]&0xf) * 4
			if buf[9] != 17 || [4]byte(buf[12:16]) != src || n < ihl+8 {
				continue
			}
			if binary.BigEndian.Uint16(buf[ihl+2:]) != lab.HeartbeatPort {
				continue
			}
			payload = append([]byte(nil), buf[ihl+8:n]...)
			return nil
		}
		return errors.New("no heartbeat from nva-b seen on front")
	})
	return payload, err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// heartbeatCases attack both nodes' heartbeat port and nva-b's channel.
func (s *suite) heartbeatCases() []testCase {
	keys, err := heartbeat.LoadKeys(s.keyFile)
	if err != nil {
		s.t.Fatal(err)
	}
	forged := func(node string, epoch uint64) heartbeat.Message {
		return heartbeat.Message{Node: node, Path: "front", Epoch: epoch, Seq: 1, Sent: time.Now().UnixNano(),
			State: role.Active, Term: 1 << 40, Priority: 254, Flags: heartbeat.FlagHealthy}
	}
	udp := func(to int, pkts ...[]byte) error {
		c, err := s.mallory.DialContext(context.Background(), "udp", net.JoinHostPort(lab.FrontAddr(to), fmt.Sprint(lab.HeartbeatPort)))
		if err != nil {
			return err
		}
		defer c.Close()
		for range 20 {
			for _, p := range pkts {
				_, _ = c.Write(p)
			}
		}
		return nil
	}
	channel := func(to int, frames ...[]byte) error {
		c, err := s.mallory.DialContext(context.Background(), "tcp", net.JoinHostPort(lab.FrontAddr(to), fmt.Sprint(lab.ChannelPort)))
		if err != nil {
			return err
		}
		defer c.Close()
		for _, f := range frames {
			_, _ = c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(f))))
			_, _ = c.Write(f)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, _ = c.Read(make([]byte, 16))
		return nil
	}
	dropCase := func(name string, to int, reasons []string, attack func() error) testCase {
		return testCase{name: name, run: func() (string, error) {
			count := func() uint64 {
				st, err := s.status(to)
				if err != nil {
					return 0
				}
				var n uint64
				for _, r := range reasons {
					n += st.Peer.Drops[r]
				}
				return n
			}
			before := count()
			if err := attack(); err != nil {
				return "", err
			}
			var after uint64
			if !eventually(5*time.Second, func() bool { after = count(); return after > before }) {
				return "", fmt.Errorf("heartbeat drops %v did not move", reasons)
			}
			return fmt.Sprintf("dropped, heartbeat_dropped_total{%s} +%d", strings.Join(reasons, "|"), after-before), nil
		}}
	}
	enc := func(m heartbeat.Message, key []byte) []byte {
		b, err := heartbeat.Encode(&m, key)
		if err != nil {
			s.t.Fatal(err)
		}
		return b
	}
	wrongKey := []byte("this-is-not-the-cluster-key-at-all")
	garbage := make([]byte, 200)
	_, _ = rand.Read(garbage)
	return []testCase{
		dropCase("heartbeat/udp-garbage", 1, []string{"malformed"}, func() error { return udp(1, garbage, []byte("BTHB"), garbage[:91]) }),
		dropCase("heartbeat/udp-wrong-key-takeover-claim", 1, []string{"bad_mac"}, func() error { return udp(1, enc(forged("nva-a", 1), wrongKey)) }),
		dropCase("heartbeat/udp-stale-epoch-takeover-claim", 1, []string{"stale_epoch", "dead_epoch", "replay"}, func() error {
			return udp(1, enc(forged("nva-a", 1), keys[0]))
		}),
		dropCase("heartbeat/udp-unknown-sender", 1, []string{"unknown_sender"}, func() error { return udp(1, enc(forged("mallory", 1<<50), keys[0])) }),
		dropCase("heartbeat/udp-replay-captured", 0, []string{"replay", "stale_epoch"}, func() error {
			p, err := s.capture()
			if err != nil {
				return err
			}
			return udp(0, p)
		}),
		dropCase("heartbeat/channel-garbage", 1, []string{"malformed"}, func() error { return channel(1, garbage[:120]) }),
		dropCase("heartbeat/channel-wrong-key", 1, []string{"bad_mac"}, func() error {
			m := forged("nva-a", 1)
			m.Path = heartbeat.ChannelPath
			return channel(1, enc(m, wrongKey))
		}),
	}
}
