// Package hooks runs the operator's executables when the node enters a
// role (ACTIVE, STANDBY, FAULT, MAINTENANCE). Hooks never hold up a
// takeover: Run only queues the transition, and one worker goroutine runs
// the hooks of each transition in turn, each with a timeout after which
// its whole process group is killed.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/procgroup"
	"github.com/batonha/baton/internal/store"
)

// DefaultTimeout applies when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// QueueSize bounds the transitions waiting for the worker. When it is
// full, the oldest waiting transition is dropped.
const QueueSize = 64

// maxLine bounds one logged line of hook output.
const maxLine = 4096

// Transition is a role change the hooks are told about.
type Transition struct {
	Node   string
	Peer   string
	From   string // e.g. "STANDBY"
	To     string // selects the hooks: ACTIVE, STANDBY, FAULT or MAINTENANCE (any case)
	Reason string
	Term   uint64
	At     time.Time // zero means the time Run was called
}

// HookStatus is the last run of one hook for one state.
type HookStatus struct {
	Path     string
	To       string
	Term     uint64
	At       time.Time // when it started
	ExitCode int       // -1 when it was killed or did not start
	Duration time.Duration
	Error    string // empty on success
}

// Runner queues transitions and runs their hooks. Create it with New.
type Runner struct {
	timeout time.Duration
	hooks   map[string][]string // upper-case state -> executables
	clk     clock.Clock
	log     *slog.Logger
	path    string // PATH given to hooks

	ctx    context.Context // cancelled to abandon work on Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker returns

	mu      sync.Mutex
	queue   []Transition
	wake    chan struct{} // 1-buffered: the queue has news
	idle    chan struct{} // non-nil while busy or pending; closed when idle
	closed  bool
	status  map[string]HookStatus // key: To + "\x00" + Path
	dropped uint64
}

// New checks cfg (every hook an absolute path) and starts the worker.
// Hooks get an environment of their own: BATON_NODE, BATON_PEER,
// BATON_OLD_STATE, BATON_NEW_STATE, BATON_REASON, BATON_TERM, BATON_TIME
// (RFC 3339, UTC, nanoseconds) and the daemon's PATH; they run in "/"
// with no arguments and stdin from /dev/null. Their timeouts run on clk.
func New(cfg Config, clk clock.Clock, log *slog.Logger) (*Runner, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hooks := map[string][]string{
		"ACTIVE":      cfg.Active,
		"STANDBY":     cfg.Standby,
		"FAULT":       cfg.Fault,
		"MAINTENANCE": cfg.Maintenance,
	}
	for state, paths := range hooks {
		for _, p := range paths {
			if p == "" || !filepath.IsAbs(p) {
				return nil, fmt.Errorf("configuring %s hooks: %q is not an absolute path", strings.ToLower(state), p)
			}
			// A hook others may write runs their code as root.
			if _, err := store.CheckFileMode(p, store.Program); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("configuring %s hooks: %w", strings.ToLower(state), err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		timeout: timeout,
		hooks:   hooks,
		clk:     clk,
		log:     log.With("component", "hooks"),
		path:    os.Getenv("PATH"),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		status:  make(map[string]HookStatus),
	}
	if r.path == "" {
		r.path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	go r.worker()
	return r, nil
}

// Run queues tr and returns at once. Transitions to a state without hooks
// are ignored. When QueueSize transitions already wait, the oldest
// waiting one is dropped (and logged) to make room.
func (r *Runner) Run(tr Transition) {
	if tr.At.IsZero() {
		tr.At = r.clk.Now()
	}
	to := strings.ToUpper(tr.To)
	if len(r.hooks[to]) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.log.Warn("hook runner closed; transition not run", "to", tr.To, "term", tr.Term)
		return
	}
	if len(r.queue) >= QueueSize {
		old := r.queue[0]
		r.queue = r.queue[1:]
		r.dropped++
		r.log.Warn("hook queue full; dropping oldest pending transition",
			"from", old.From, "to", old.To, "term", old.Term, "reason", old.Reason)
	}
	r.queue = append(r.queue, tr)
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Wait blocks until every queued transition has been run or ctx is done.
func (r *Runner) Wait(ctx context.Context) error {
	r.mu.Lock()
	idle := r.idle
	r.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for hooks: %w", ctx.Err())
	}
}

// Close stops accepting transitions and lets the worker finish the queue.
// When ctx ends first, the running hook is killed, the rest dropped, and
// ctx's error returned. Close is idempotent.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		<-r.done
		return fmt.Errorf("closing hook runner: %w", ctx.Err())
	}
}

// Dropped counts transitions dropped because the queue was full.
func (r *Runner) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Status returns the last run of every hook that has run, by state then
// path.
func (r *Runner) Status() []HookStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]HookStatus, 0, len(r.status))
	for _, s := range r.status {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].To != out[j].To {
			return out[i].To < out[j].To
		}
		return out[i].Path < out[j].Path
	})
	return out
}

func (r *Runner) worker() {
	defer close(r.done)
	for {
		r.mu.Lock()
		for len(r.queue) == 0 {
			if r.idle != nil {
				close(r.idle)
				r.idle = nil
			}
			if r.closed {
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			<-r.wake
			r.mu.Lock()
		}
		if r.ctx.Err() != nil {
			for _, tr := range r.queue {
				r.log.Warn("hook runner stopped; transition not run", "to", tr.To, "term", tr.Term)
			}
			r.queue = nil
			r.mu.Unlock()
			continue
		}
		tr := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()

		for _, path := range r.hooks[strings.ToUpper(tr.To)] {
			if r.ctx.Err() != nil {
				break
			}
			st := r.runHook(path, tr)
			r.mu.Lock()
			r.status[st.To+"\x00"+st.Path] = st
			r.mu.Unlock()
		}
	}
}

// runHook runs one hook for tr and reports how it went.
func (r *Runner) runHook(path string, tr Transition) HookStatus {
	st := HookStatus{Path: path, To: strings.ToUpper(tr.To), Term: tr.Term, At: r.clk.Now(), ExitCode: -1}
	log := r.log.With("hook", path, "from", tr.From, "to", tr.To, "term", tr.Term)

	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var timedOut atomic.Bool
	timer := r.clk.AfterFunc(r.timeout, func() {
		timedOut.Store(true)
		cancel()
	})
	defer timer.Stop()

	cmd := exec.CommandContext(ctx, path)
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=" + r.path,
		"BATON_NODE=" + tr.Node,
		"BATON_PEER=" + tr.Peer,
		"BATON_OLD_STATE=" + tr.From,
		"BATON_NEW_STATE=" + tr.To,
		"BATON_REASON=" + tr.Reason,
		"BATON_TERM=" + strconv.FormatUint(tr.Term, 10),
		"BATON_TIME=" + tr.At.UTC().Format(time.RFC3339Nano),
	}
	stdout := &lineLogger{log: log, stream: "stdout"}
	stderr := &lineLogger{log: log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	procgroup.KillOnCancel(cmd)
	cmd.WaitDelay = 2 * time.Second

	log.Debug("running hook")
	err := cmd.Run()
	stdout.flush()
	stderr.flush()
	st.Duration = r.clk.Now().Sub(st.At)
	if cmd.ProcessState != nil {
		st.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil:
		log.Info("hook finished", "exit_code", st.ExitCode, "duration", st.Duration)
		return st
	case timedOut.Load():
		err = fmt.Errorf("killed after timeout %v", r.timeout)
	case r.ctx.Err() != nil:
		err = errors.New("killed: hook runner closed")
	}
	st.Error = err.Error()
	log.Warn("hook failed", "exit_code", st.ExitCode, "duration", st.Duration, "err", st.Error)
	return st
}

// lineLogger logs what a hook writes, one record per line. os/exec
// writes to each from one goroutine at a time.
type lineLogger struct {
	log     *slog.Logger
	stream  string
	buf     []byte
	discard bool // the current line was too long and already logged
}

func (l *lineLogger) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexNL(p)
		if i < 0 {
			l.add(p)
			break
		}
		l.add(p[:i])
		l.emit()
		l.discard = false
		p = p[i+1:]
	}
	return n, nil
}

func (l *lineLogger) add(p []byte) {
	if l.discard {
		return
	}
	room := maxLine - len(l.buf)
	if len(p) <= room {
		l.buf = append(l.buf, p...)
		return
	}
	l.buf = append(l.buf, p[:room]...)
	l.buf = append(l.buf, "..."...)
	l.emit()
	l.discard = true
}

func (l *lineLogger) emit() {
	if l.discard {
		return
	}
	line := strings.ToValidUTF8(strings.TrimRight(string(l.buf), "\r"), "?")
	l.buf = l.buf[:0]
	l.log.Info("hook output", "stream", l.stream, "line", line)
}

// flush logs an unterminated last line.
func (l *lineLogger) flush() {
	if len(l.buf) > 0 {
		l.emit()
	}
}

func indexNL(p []byte) int {
	for i, b := range p {
		if b == '\n' {
			return i
		}
	}
	return -1
}
