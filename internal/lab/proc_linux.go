package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a process started in a host's namespace through the lab.
type Proc struct {
	// PID is the program's own process id: `ip netns exec` execs into it.
	PID  int
	Name string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs argv inside the host's namespace with env appended to the
// lab's own environment, stdout and stderr appended to logPath. The lab
// kills it on Close; name labels it in logs.
func (h *Host) Start(name string, argv []string, env []string, logPath string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("starting %s in %s: empty argv", name, h.ns)
	}
	h.lab.mu.Lock()
	closed := h.lab.closed
	h.lab.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("starting %s in %s: lab is closed", name, h.ns)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log %s for %s: %w", logPath, name, err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = f
	cmd.Stderr = f
	// Own process group: a terminal's ^C reaches the lab, which then tears
	// down in order. No Pdeathsig: it fires when the forking OS thread ends,
	// and Go ends threads that a goroutine left locked (as Host.Do may and
	// namespace-bound measuring helpers do), killing healthy children. After
	// a crash of the lab process, Cleanup finds them by namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s (%s) in %s: %w", name, strings.Join(argv, " "), h.ns, err)
	}
	p := &Proc{PID: cmd.Process.Pid, Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	h.lab.log.Debug("process started", "host", h.name, "proc", name, "pid", p.PID)
	return p, nil
}

// Signal sends sig to the process; it fails once the process has exited.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("signalling %s (pid %d): %w", p.Name, p.PID, os.ErrProcessDone)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s (pid %d) with %v: %w", p.Name, p.PID, sig, err)
	}
	return nil
}

// Wait waits for the process to exit and returns its exit error, if any.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited (and been reaped).
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process unless it has exited, and waits for it.
func (p *Proc) kill(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("killing %s (pid %d): still running after %v", p.Name, p.PID, timeout)
	}
}

// Run runs a short command inside the host's namespace and returns its
// combined output.
func (h *Host) Run(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("running in %s: empty argv", h.ns)
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns}, argv...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("running %q in %s: %w: %s", strings.Join(argv, " "), h.ns, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// DialContext dials addr from a socket created inside the host's namespace.
// It has the signature of http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dialing %s %s from %s: %w", network, addr, h.ns, err)
	}
	return c, nil
}

// ListenPacket opens a packet socket inside the host's namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s %s in %s: %w", network, addr, h.ns, err)
	}
	return c, nil
}

// Listen opens a stream listener inside the host's namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s %s in %s: %w", network, addr, h.ns, err)
	}
	return l, nil
}

// errIsClosed reports whether err means the socket was closed on purpose.
func errIsClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
