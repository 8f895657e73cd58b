package hooks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
)

var epoch = time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.UTC)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func fifo(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readFifo opens p (blocking until a writer opens it) and reads one line.
func readFifo(t *testing.T, p string) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer f.Close()
		s, err := bufio.NewReader(f).ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading %s: %v", p, r.err)
		}
		return r.s
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out reading %s", p)
		return ""
	}
}

// writeFifo opens p (blocking until a reader opens it) and writes a line.
func writeFifo(t *testing.T, p string) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			ch <- err
			return
		}
		_, err = f.WriteString("go\n")
		f.Close()
		ch <- err
	}()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out writing %s", p)
	}
}

func newRunner(t *testing.T, cfg Config, log *slog.Logger) (*Runner, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	r, err := New(cfg, clk, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // kill whatever still runs
		r.Close(ctx)
	})
	return r, clk
}

func wait(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func readLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestEnvironment(t *testing.T) {
	t.Setenv("BATON_TEST_LEAK", "must-not-leak")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	hook := script(t, dir, "env.sh", fmt.Sprintf("env > %q; pwd >> %q", out, out))
	r, _ := newRunner(t, Config{Active: []string{hook}}, nil)
	r.Run(Transition{Node: "nva-a", Peer: "nva-b", From: "STANDBY", To: "ACTIVE",
		Reason: "peer lost on all paths", Term: 17, At: epoch.In(time.FixedZone("X", 3600))})
	wait(t, r)

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, l := range lines[:len(lines)-1] {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"BATON_NODE":      "nva-a",
		"BATON_PEER":      "nva-b",
		"BATON_OLD_STATE": "STANDBY",
		"BATON_NEW_STATE": "ACTIVE",
		"BATON_REASON":    "peer lost on all paths",
		"BATON_TERM":      "17",
		"BATON_TIME":      "2025-06-07T08:09:10.123456789Z",
		"PATH":            os.Getenv("PATH"),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["BATON_TEST_LEAK"]; ok {
		t.Error("the daemon's environment leaked into the hook")
	}
	if wd := lines[len(lines)-1]; wd != "/" {
		t.Errorf("hook ran in %q, want /", wd)
	}
	st := r.Status()
	if len(st) != 1 || st[0].Path != hook || st[0].To != "ACTIVE" || st[0].ExitCode != 0 || st[0].Error != "" || st[0].Term != 17 {
		t.Errorf("Status = %+v", st)
	}
}

func TestOrder(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "log")
	mk := func(name string) string {
		return script(t, dir, name, fmt.Sprintf(`echo "%s:$BATON_NEW_STATE:$BATON_TERM" >> %q`, name, logf))
	}
	a, b, c, f := mk("a"), mk("b"), mk("c"), mk("f")
	r, _ := newRunner(t, Config{Active: []string{a, b}, Standby: []string{c}, Fault: []string{f}}, nil)
	r.Run(Transition{To: "ACTIVE", Term: 1})
	r.Run(Transition{To: "standby", Term: 2})
	r.Run(Transition{To: "INIT", Term: 3}) // no hooks
	r.Run(Transition{To: "ACTIVE", Term: 4})
	r.Run(Transition{To: "FAULT", Term: 5})
	wait(t, r)
	got := strings.Join(readLines(t, logf), " ")
	want := "a:ACTIVE:1 b:ACTIVE:1 c:standby:2 a:ACTIVE:4 b:ACTIVE:4 f:FAULT:5"
	if got != want {
		t.Errorf("hooks ran as\n  %s\nwant\n  %s", got, want)
	}
	if st := r.Status(); len(st) != 4 {
		t.Errorf("Status has %d entries, want 4: %+v", len(st), st)
	}
}

func TestFailureIsRecordedAndNextHookRuns(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "second-ran")
	bad := script(t, dir, "bad.sh", "exit 7")
	good := script(t, dir, "good.sh", fmt.Sprintf("touch %q", marker))
	missing := filepath.Join(dir, "missing.sh")
	r, _ := newRunner(t, Config{Fault: []string{bad, missing, good}}, nil)
	r.Run(Transition{To: "FAULT", Term: 1})
	wait(t, r)
	if _, err := os.Stat(marker); err != nil {
		t.Error("the hook after a failing one did not run")
	}
	byPath := map[string]HookStatus{}
	for _, s := range r.Status() {
		byPath[s.Path] = s
	}
	if s := byPath[bad]; s.ExitCode != 7 || !strings.Contains(s.Error, "exit status 7") {
		t.Errorf("bad hook status %+v", s)
	}
	if s := byPath[missing]; s.ExitCode != -1 || s.Error == "" {
		t.Errorf("missing hook status %+v", s)
	}
	if s := byPath[good]; s.ExitCode != 0 || s.Error != "" {
		t.Errorf("good hook status %+v", s)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	started := fifo(t, dir, "started")
	pidFile := filepath.Join(dir, "pid")
	hook := script(t, dir, "hang.sh", fmt.Sprintf("sleep 600 &\necho $! > %q\necho up > %q\nwait", pidFile, started))
	r, clk := newRunner(t, Config{Timeout: 5 * time.Second, Active: []string{hook}}, nil)
	r.Run(Transition{To: "ACTIVE", Term: 9})
	if got := readFifo(t, started); got != "up" {
		t.Fatalf("hook said %q", got)
	}
	// The timeout runs on the injected clock: nothing is killed early.
	clk.Advance(4 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx); err == nil {
		t.Fatal("hook finished before its timeout")
	}
	clk.Advance(time.Second)
	wait(t, r)
	st := r.Status()
	if len(st) != 1 || st[0].ExitCode != -1 || !strings.Contains(st[0].Error, "killed after timeout 5s") {
		t.Fatalf("Status = %+v", st)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

// waitGone polls until pid no longer runs (gone or a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d survived the hook timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gateHook is a hook that, for term 1 only, announces itself on started
// and then blocks until release is written; every run appends its term to
// log.
func gateHook(t *testing.T, dir string) (hook, started, release, logf string) {
	started = fifo(t, dir, "started")
	release = fifo(t, dir, "release")
	logf = filepath.Join(dir, "log")
	hook = script(t, dir, "gate.sh", fmt.Sprintf(`if [ "$BATON_TERM" = 1 ]; then echo up > %q; read x < %q; fi
echo "$BATON_TERM" >> %q`, started, release, logf))
	return
}

func TestRunDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	hook, started, release, logf := gateHook(t, dir)
	r, _ := newRunner(t, Config{Active: []string{hook}, Standby: []string{hook}}, nil)
	r.Run(Transition{To: "ACTIVE", Term: 1})
	readFifo(t, started) // the hook now runs, blocked on release

	returned := make(chan struct{})
	go func() {
		r.Run(Transition{To: "STANDBY", Term: 2})
		r.Run(Transition{To: "ACTIVE", Term: 3})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Run blocked while a hook was running")
	}
	// Still running: nothing logged yet, no status yet.
	if _, err := os.Stat(logf); err == nil {
		t.Fatal("hook finished before it was released")
	}
	if len(r.Status()) != 0 {
		t.Fatal("status recorded before the hook finished")
	}
	writeFifo(t, release)
	wait(t, r)
	if got := strings.Join(readLines(t, logf), " "); got != "1 2 3" {
		t.Errorf("terms ran: %s, want 1 2 3", got)
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	dir := t.TempDir()
	hook, started, release, logf := gateHook(t, dir)
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r, _ := newRunner(t, Config{Active: []string{hook}}, log)
	r.Run(Transition{To: "ACTIVE", Term: 1})
	readFifo(t, started)
	const extra = 3
	for term := 2; term < 2+QueueSize+extra; term++ {
		r.Run(Transition{To: "ACTIVE", Term: uint64(term)})
	}
	if got := r.Dropped(); got != extra {
		t.Errorf("Dropped() = %d, want %d", got, extra)
	}
	writeFifo(t, release)
	wait(t, r)
	got := readLines(t, logf)
	want := []string{"1"}
	for term := 2 + extra; term < 2+QueueSize+extra; term++ {
		want = append(want, strconv.Itoa(term))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("terms ran: %v\nwant %v", got, want)
	}
	if n := strings.Count(buf.String(), "dropping oldest pending transition"); n != extra {
		t.Errorf("%d drop log records, want %d", n, extra)
	}
}

func TestOutputLogged(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", maxLine+100)
	hook := script(t, dir, "talk.sh", fmt.Sprintf(`echo "hello out"; echo "oops err" >&2; printf '%%s\n' %s; printf 'no newline'`, long))
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r, _ := newRunner(t, Config{Maintenance: []string{hook}}, log)
	r.Run(Transition{To: "MAINTENANCE", Term: 4})
	wait(t, r)
	type rec struct {
		Msg, Component, Hook, Stream, Line string
		ExitCode                           *int `json:"exit_code"`
	}
	var lines []rec
	var finished bool
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var x rec
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if x.Component != "hooks" || x.Hook != hook {
			t.Errorf("log record without component/hook: %s", l)
		}
		switch x.Msg {
		case "hook output":
			lines = append(lines, x)
		case "hook finished":
			finished = x.ExitCode != nil && *x.ExitCode == 0
		}
	}
	if !finished {
		t.Error("no 'hook finished' record with exit_code 0")
	}
	got := map[string]string{}
	for _, l := range lines {
		key := l.Line
		if len(key) > 20 {
			key = fmt.Sprintf("long:%d", len(key))
		}
		got[key] = l.Stream
	}
	want := map[string]string{
		"hello out":                       "stdout",
		"oops err":                        "stderr",
		"no newline":                      "stdout",
		fmt.Sprintf("long:%d", maxLine+3): "stdout",
	}
	if len(lines) != len(want) {
		t.Errorf("%d output records, want %d: %+v", len(lines), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("output %q on %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestCloseKillsRunningHookWhenContextEnds(t *testing.T) {
	dir := t.TempDir()
	hook, started, _, logf := gateHook(t, dir)
	clk := clock.NewFake(epoch)
	r, err := New(Config{Active: []string{hook}}, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Run(Transition{To: "ACTIVE", Term: 1})
	readFifo(t, started)
	r.Run(Transition{To: "ACTIVE", Term: 2})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); err == nil {
		t.Fatal("Close with an ended context did not report it")
	}
	if _, err := os.Stat(logf); err == nil {
		t.Error("pending transition ran after Close gave up")
	}
	st := r.Status()
	if len(st) != 1 || !strings.Contains(st[0].Error, "runner closed") {
		t.Errorf("Status = %+v", st)
	}
	r.Run(Transition{To: "ACTIVE", Term: 3}) // ignored, must not panic or block
	if err := r.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestCloseDrains(t *testing.T) {
	dir := t.TempDir()
	logf := filepath.Join(dir, "log")
	hook := script(t, dir, "h.sh", fmt.Sprintf(`echo "$BATON_TERM" >> %q`, logf))
	r, err := New(Config{Standby: []string{hook}}, clock.NewFake(epoch), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Run(Transition{To: "STANDBY", Term: 1})
	r.Run(Transition{To: "STANDBY", Term: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(readLines(t, logf), " "); got != "1 2" {
		t.Errorf("terms ran: %s", got)
	}
}

func TestNewRejectsRelativePaths(t *testing.T) {
	for _, cfg := range []Config{
		{Active: []string{"notify.sh"}},
		{Fault: []string{""}},
		{Maintenance: []string{"./x"}},
	} {
		if _, err := New(cfg, clock.NewFake(epoch), nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestWaitWhenIdle(t *testing.T) {
	r, _ := newRunner(t, Config{}, nil)
	r.Run(Transition{To: "ACTIVE"}) // no hooks: nothing queued
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx); err != nil {
		t.Errorf("Wait on an idle runner = %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
