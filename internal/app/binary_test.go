package app_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
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
		builtPath = filepath.Join(buildDir, "orgsvc")
		out, err := exec.Command("go", "build", "-o", builtPath, "github.com/orgsvc/orgsvc/cmd/orgsvc").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
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
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

// runServer starts the program in dir with env (see baseEnv) and waits
// until it answers /health at addr. It is stopped when the test ends.
func runServer(t *testing.T, dir, addr string, env []string) *server {
	t.Helper()
	s := &server{base: "http://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary(t))
	s.cmd.Dir = dir
	s.cmd.Env = append(env, "HTTP_ADDR="+addr)
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := s.cmd.Wait()
		s.code = s.cmd.ProcessState.ExitCode()
		if s.code == -1 && err != nil {
			s.code = -2 // killed by a signal
		}
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("the server exited with %d before serving\nstderr:\n%s", s.code, s.stderr.String())
		default:
		}
		if res, err := client.Get(s.base + "/health"); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/health did not answer within 90s\nstderr:\n%s", s.base, s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wait waits for the process to exit on its own and returns its status.
func (s *server) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(within):
		t.Fatalf("the server did not exit within %s\nstderr:\n%s", within, s.stderr.String())
		return 0
	}
}

// stop ends the process with SIGTERM (SIGKILL after 30s) and returns its
// exit status.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
		return s.code
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("the server did not stop within 30s of SIGTERM\nstderr:\n%s", s.stderr.String())
	}
	return s.code
}

func (s *server) call(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return callAt(t, s.base, method, path, token, body)
}

// runCheck runs `orgsvc check` (with args) in dir with env and returns its
// exit status and output.
func runCheck(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"check"}, args...)...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}
