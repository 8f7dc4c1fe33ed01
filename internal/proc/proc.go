// Package proc starts the service binary (or any program serving /health)
// in a process of its own and stops it again: the harness shared by the
// load tool, the chaos test and the tests that run the built program.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Module is the module whose cmd/orgsvc Build builds.
const Module = "github.com/orgsvc/orgsvc"

// ModuleDir is the directory of the service module as the module around
// the working directory sees it: the module itself, or the one a replace
// directive points to (the load tool's module).
func ModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m %s: %w\n%s", Module, err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s: %w", Module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: no directory", Module)
	}
	return dir, nil
}

// Build builds cmd/orgsvc of the service module (see ModuleDir), with
// that module's own dependencies, into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := ModuleDir(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orgsvc")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/orgsvc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s/cmd/orgsvc: %w\n%s", Module, err, out)
	}
	return bin, nil
}

// Spec is what to start.
type Spec struct {
	Bin  string
	Args []string
	Dir  string   // working directory; empty: the caller's
	Env  []string // the whole environment: nothing else is inherited
	// Stdout and Stderr receive the process's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Process is a started program. It is put in a process group of its own
// and, on Linux, killed by the kernel should the starting process die.
type Process struct {
	// Cmd is the started command.
	Cmd  *exec.Cmd
	done chan struct{}
	code int
}

// Start starts spec.Bin; it does not wait for it to serve.
func Start(spec Spec) (*Process, error) {
	cmd := exec.Command(spec.Bin, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Bin, err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Done is closed once the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Code is the exit status once the process has ended: -1 when a signal
// ended it.
func (p *Process) Code() int {
	<-p.done
	return p.code
}

// Wait waits up to within for the process to end by itself; false when it
// is still running.
func (p *Process) Wait(within time.Duration) (code int, ok bool) {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		if !p.Exited() {
			return 0, false
		}
	}
	return p.code, true
}

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() error {
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	return nil
}

// Stop ends the process with SIGTERM, and with SIGKILL when it has not
// ended within grace (killed is then true). It returns the exit status,
// the one it had when it was not running.
func (p *Process) Stop(grace time.Duration) (code int, killed bool) {
	if p.Exited() {
		return p.code, false
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	if code, ok := p.Wait(grace); ok {
		return code, false
	}
	_ = p.Kill()
	return p.code, true
}

// ExitedError is WaitHealthy's answer for a process that ended first.
type ExitedError struct{ Code int }

func (e *ExitedError) Error() string {
	return fmt.Sprintf("exited with %d before answering /health", e.Code)
}

// WaitHealthy polls base+"/health" until it answers 200. It fails with
// an *ExitedError when the process ends first, with ctx's error when ctx
// ends, and when within passes.
func (p *Process) WaitHealthy(ctx context.Context, base string, within time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	for {
		if p.Exited() {
			return &ExitedError{Code: p.code}
		}
		if res, err := client.Get(base + "/health"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/health did not answer 200 within %s", base, within)
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Fetch sends a request to url with body (none when nil) and headers
// through client, and reads the whole answer. The request is returned once
// made, the response once it came.
func Fetch(client *http.Client, method, url string, headers map[string]string, body []byte) (*http.Request, *http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return req, nil, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return req, res, raw, err
}

// Buffer collects a process's output: safe for the goroutines that copy
// its stdout and stderr and for readers at the same time.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is the output so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback address with a port nobody listens on.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Tail returns the last n lines of the file at path; empty when it cannot
// be read.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
