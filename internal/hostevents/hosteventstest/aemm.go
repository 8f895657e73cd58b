package hosteventstest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	aemm "github.com/aws/amazon-ec2-metadata-mock/pkg/cmd/root"
)

// aemmEnv carries the mock's arguments to the child process.
const aemmEnv = "BATON_AEMM_ARGS"

// RunAEMMIfChild runs AWS's amazon-ec2-metadata-mock and never returns
// when this process was started by StartAEMM; otherwise it returns at
// once. Call it first in TestMain (or main): the mock keeps its state in
// package variables, so each scenario gets a process of its own.
func RunAEMMIfChild() {
	args := os.Getenv(aemmEnv)
	if args == "" {
		return
	}
	cmd := aemm.NewCmd()
	cmd.SetArgs(strings.Split(args, "\x1f"))
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ec2-metadata-mock:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// AEMMEnv is the environment entry that makes this executable, started
// again, run the mock on host:port with args (IMDSv2 only) — for callers
// that start the child themselves (in another network namespace, say).
func AEMMEnv(host, port string, args ...string) string {
	all := append(append([]string{}, args...), "-n", host, "-p", port, "-I")
	return aemmEnv + "=" + strings.Join(all, "\x1f")
}

// TB is the part of testing.TB that StartAEMM needs (a benchmark program
// passes its own).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartAEMM starts amazon-ec2-metadata-mock with args (a subcommand such as
// "spot" or "events" and its flags; -n and -p are added) in a child of
// this process, IMDSv2 only, and returns its base URL once it answers.
func StartAEMM(t TB, args ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("finding this executable: %v", err)
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("picking a port: %v", err)
		}
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), AEMMEnv("127.0.0.1", port, args...))
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting ec2-metadata-mock: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		url := "http://127.0.0.1:" + port
		if waitUp(url, exited) {
			t.Cleanup(stop)
			return url
		}
		stop() // most likely the port was taken meanwhile: another one
	}
	t.Fatalf("ec2-metadata-mock did not come up")
	return ""
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// waitUp polls the token endpoint until the mock answers, it exits, or
// 20s pass.
func waitUp(url string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPut, url+"/latest/api/token", nil)
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}
