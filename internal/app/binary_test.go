package app_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/orgsvc/orgsvc/internal/proc"
)

// The built program, for tests that must see a process die and start
// again: made once per run of the package's tests.
var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary returns the path of cmd/orgsvc built for this test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "orgsvc-test-bin"); buildErr != nil {
			return
		}
		builtPath, buildErr = proc.Build(context.Background(), buildDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// baseEnv is the environment every program started by a test gets: only
// what a process needs to run, so no setting of the test's own leaks in.
func baseEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(), "LOG_LEVEL=debug"}
	return append(env, extra...)
}

// server is the built program serving in a process of its own.
type server struct {
	base   string
	p      *proc.Process
	cmd    *exec.Cmd // p.Cmd, for tests that signal or inspect the process
	stderr *proc.Buffer
}

// runServer starts the program in dir with env (see baseEnv) and waits
// until it answers /health at addr. It is stopped when the test ends.
func runServer(t *testing.T, dir, addr string, env []string) *server {
	t.Helper()
	s := &server{base: "http://" + addr, stderr: &proc.Buffer{}}
	p, err := proc.Start(proc.Spec{Bin: binary(t), Dir: dir, Env: append(env, "HTTP_ADDR="+addr), Stderr: s.stderr})
	if err != nil {
		t.Fatal(err)
	}
	s.p, s.cmd = p, p.Cmd
	t.Cleanup(func() { s.stop(t) })
	if err := p.WaitHealthy(context.Background(), s.base, 90*time.Second); err != nil {
		t.Fatalf("the server: %v\nstderr:\n%s", err, s.stderr.String())
	}
	return s
}

// status is the exit status, -2 when a signal ended the process.
func status(code int) int {
	if code == -1 {
		return -2
	}
	return code
}

// wait waits for the process to exit on its own and returns its status.
func (s *server) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	code, ok := s.p.Wait(within)
	if !ok {
		t.Fatalf("the server did not exit within %s\nstderr:\n%s", within, s.stderr.String())
	}
	return status(code)
}

// stop ends the process with SIGTERM (SIGKILL after 30s) and returns its
// exit status.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	code, killed := s.p.Stop(30 * time.Second)
	if killed {
		t.Errorf("the server did not stop within 30s of SIGTERM\nstderr:\n%s", s.stderr.String())
	}
	return status(code)
}

func (s *server) call(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return callAt(t, s.base, method, path, token, body)
}

// runCheck runs `orgsvc check` (with args) in dir with env and returns its
// exit status and output (stdout and stderr as they came).
func runCheck(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := runTo(t, dir, env, &out, &out, append([]string{"check"}, args...)...)
	return code, out.String()
}

// runOrgsvc runs the binary with args in dir with env and returns its exit
// status, stdout and stderr.
func runOrgsvc(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runTo(t, dir, env, &out, &errOut, args...)
	return code, out.String(), errOut.String()
}

func runTo(t *testing.T, dir string, env []string, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}
