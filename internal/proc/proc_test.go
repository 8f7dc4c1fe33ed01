package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper program (see helper) instead
// of running the tests.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode, os.Getenv("PROC_TEST_ADDR"))
		return
	}
	os.Exit(m.Run())
}

// helper is a tiny program: "exit" writes to stderr and exits 7; "serve"
// answers /health with its environment and exits 3 on SIGTERM; "stubborn"
// serves too but ignores SIGTERM; "silent" never serves.
func helper(mode, addr string) {
	switch mode {
	case "exit":
		fmt.Fprintln(os.Stderr, "helper: leaving at once")
		os.Exit(7)
	case "silent":
		time.Sleep(time.Minute)
		os.Exit(0)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	case "serve":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			fmt.Println("helper: SIGTERM")
			os.Exit(3)
		}()
	}
	fmt.Println("helper: serving on", addr)
	err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, strings.Join(os.Environ(), "\n"))
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// startHelper starts the test binary as the helper in mode, on a free
// address, with extra variables; it is killed when the test ends.
func startHelper(t *testing.T, mode string, extra ...string) (*Process, string, *Buffer, *Buffer) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr Buffer
	p, err := Start(Spec{
		Bin: self, Dir: t.TempDir(),
		Env:    append([]string{helperEnv + "=" + mode, "PROC_TEST_ADDR=" + addr}, extra...),
		Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p, "http://" + addr, &stdout, &stderr
}

func get(t *testing.T, url string) (string, error) {
	t.Helper()
	res, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// TestServiceBinary builds cmd/orgsvc and runs it on the embedded store:
// it serves, and SIGTERM ends it with status 0.
func TestServiceBinary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var logs Buffer
	p, err := Start(Spec{
		Bin: bin, Dir: dir,
		Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
			"HTTP_ADDR=" + addr, "DATA_DIR=" + filepath.Join(dir, "data"), "BCRYPT_COST=4", "LOG_LEVEL=info"},
		Stdout: &logs, Stderr: &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if err := p.WaitHealthy(ctx, "http://"+addr, 2*time.Minute); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, logs.String())
	}
	if body, err := get(t, "http://"+addr+"/health"); err != nil || !strings.Contains(body, `"ok"`) {
		t.Fatalf("GET /health: %q, %v", body, err)
	}
	code, killed := p.Stop(30 * time.Second)
	if code != 0 || killed {
		t.Fatalf("Stop: status %d, killed %t; want 0 on SIGTERM\nlog:\n%s", code, killed, logs.String())
	}
	if !p.Exited() {
		t.Fatal("Exited is false after Stop")
	}
	if logs.String() == "" {
		t.Fatal("nothing of the service's log was captured")
	}
	if _, err := get(t, "http://"+addr+"/health"); err == nil {
		t.Fatal("/health still answers after Stop")
	}
}

func TestStartPassesOnlyTheGivenEnvironment(t *testing.T) {
	t.Setenv("PROC_TEST_LEAK", "1")
	p, base, stdout, _ := startHelper(t, "serve", "PROC_TEST_WANT=yes")
	if err := p.WaitHealthy(context.Background(), base, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	env, err := get(t, base+"/health")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(env, "PROC_TEST_WANT=yes") {
		t.Errorf("the helper's environment lacks PROC_TEST_WANT:\n%s", env)
	}
	if strings.Contains(env, "PROC_TEST_LEAK") {
		t.Errorf("the test's own environment leaked into the helper's:\n%s", env)
	}
	code, killed := p.Stop(10 * time.Second)
	if code != 3 || killed {
		t.Errorf("Stop: status %d, killed %t; want 3, the helper's answer to SIGTERM", code, killed)
	}
	if out := stdout.String(); !strings.Contains(out, "helper: SIGTERM") {
		t.Errorf("stdout: %q, want the helper's SIGTERM line", out)
	}
	if code, killed := p.Stop(time.Second); code != 3 || killed {
		t.Errorf("second Stop: status %d, killed %t; want 3 again", code, killed)
	}
}

func TestWaitHealthyReportsAnEarlyExit(t *testing.T) {
	p, base, _, stderr := startHelper(t, "exit")
	err := p.WaitHealthy(context.Background(), base, 30*time.Second)
	var ee *ExitedError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("WaitHealthy: %v, want an ExitedError with status 7", err)
	}
	if p.Code() != 7 {
		t.Errorf("Code: %d, want 7", p.Code())
	}
	if !strings.Contains(stderr.String(), "leaving at once") {
		t.Errorf("stderr: %q, want the helper's line", stderr.String())
	}
}

func TestWaitHealthyGivesUp(t *testing.T) {
	p, base, _, _ := startHelper(t, "silent")
	began := time.Now()
	err := p.WaitHealthy(context.Background(), base, 300*time.Millisecond)
	if err == nil || errors.As(err, new(*ExitedError)) {
		t.Fatalf("WaitHealthy: %v, want a timeout", err)
	}
	if took := time.Since(began); took < 300*time.Millisecond || took > 10*time.Second {
		t.Errorf("WaitHealthy gave up after %s, want about 300ms", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.WaitHealthy(ctx, base, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitHealthy under an ending context: %v, want its error", err)
	}
	if p.Exited() {
		t.Fatal("the helper ended by itself")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if code := p.Code(); code != -1 {
		t.Errorf("Code after Kill: %d, want -1", code)
	}
}

func TestStopKillsAfterTheGracePeriod(t *testing.T) {
	p, base, _, _ := startHelper(t, "stubborn")
	if err := p.WaitHealthy(context.Background(), base, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	code, killed := p.Stop(500 * time.Millisecond)
	if !killed || code != -1 {
		t.Fatalf("Stop: status %d, killed %t; want -1 and killed, the helper ignores SIGTERM", code, killed)
	}
	if took := time.Since(began); took < 500*time.Millisecond {
		t.Errorf("killed after %s, before the grace period", took)
	}
	if _, ok := p.Wait(0); !ok {
		t.Error("Wait: still running after Stop")
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(path, 2); got != "two\nthree" {
		t.Errorf("Tail 2: %q", got)
	}
	if got := Tail(path, 5); got != "one\ntwo\nthree" {
		t.Errorf("Tail 5: %q", got)
	}
	if got := Tail(filepath.Join(t.TempDir(), "none"), 2); got != "" {
		t.Errorf("Tail of a missing file: %q", got)
	}
}
