package chaos

import (
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

// modulePath is the module whose ./cmd/orgsvc Build builds.
const modulePath = "github.com/orgsvc/orgsvc"

// Build builds the service (cmd/orgsvc of the module around the working
// directory) into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "orgsvc")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, modulePath+"/cmd/orgsvc")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s/cmd/orgsvc: %w\n%s", modulePath, err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// instance is one service of the run (A or B): the same binary, address,
// environment and log file across its restarts.
type instance struct {
	name    string // "A" or "B"
	bin     string
	addr    string // HTTP_ADDR, 127.0.0.1:port
	base    string // http://addr
	dir     string // working directory: no .env of the repository is read
	env     []string
	logPath string
	log     *os.File

	// exited is called when a process of the instance ends without having
	// been killed or stopped by the run.
	exited func(in *instance, start, code int, tail string)

	mu     sync.Mutex
	cur    *proc
	starts int
}

// proc is one process of an instance.
type proc struct {
	n        int // which start of its instance
	cmd      *exec.Cmd
	done     chan struct{}
	code     int // exit status; -1 when ended by a signal
	expected chan struct{}
	once     sync.Once
}

// expect marks the process's end as the run's doing.
func (p *proc) expect() { p.once.Do(func() { close(p.expected) }) }

func newInstance(name, bin, dir, logPath string, env []string) (*instance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &instance{
		name: name, bin: bin, addr: addr, base: "http://" + addr, dir: dir,
		env: append(env, "HTTP_ADDR="+addr), logPath: logPath, log: f,
	}, nil
}

// start starts a new process of the instance; it does not wait for it to
// serve.
func (in *instance) start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cur != nil {
		select {
		case <-in.cur.done:
		default:
			return fmt.Errorf("%s is running", in.name)
		}
	}
	in.starts++
	fmt.Fprintf(in.log, "=== orgchaos: start %d of %s at %s ===\n", in.starts, in.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(in.bin)
	cmd.Dir = in.dir
	cmd.Env = in.env
	cmd.Stdout = in.log
	cmd.Stderr = in.log
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{n: in.starts, cmd: cmd, done: make(chan struct{}), expected: make(chan struct{})}
	in.cur = p
	go func() {
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		if p.code == -1 && err == nil {
			p.code = -2
		}
		close(p.done)
		select {
		case <-p.expected:
		default:
			if in.exited != nil {
				in.exited(in, p.n, p.code, tail(in.logPath, 20))
			}
		}
	}()
	return nil
}

// process is the current process, nil before the first start.
func (in *instance) process() *proc {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cur
}

// running reports whether a process of the instance is alive.
func (in *instance) running() bool {
	p := in.process()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitServing polls /health until it answers 200, the process exits or
// within passes.
func (in *instance) waitServing(ctx context.Context, within time.Duration) error {
	p := in.process()
	if p == nil {
		return fmt.Errorf("%s was never started", in.name)
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited with %d before serving; its log ends:\n%s", in.name, p.code, tail(in.logPath, 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if res, err := client.Get(in.base + "/health"); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /health within %s; its log ends:\n%s", in.name, within, tail(in.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the current process with SIGKILL and waits for it.
func (in *instance) kill() error {
	p := in.process()
	if p == nil {
		return errors.New("not started")
	}
	p.expect()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	fmt.Fprintf(in.log, "=== orgchaos: killed %s (kill -9) at %s ===\n", in.name, time.Now().UTC().Format(time.RFC3339Nano))
	return nil
}

// stop ends the current process with SIGTERM (SIGKILL after within) and
// returns its exit status; -3 when it had to be killed, and the status
// it had when it was not running.
func (in *instance) stop(within time.Duration) int {
	p := in.process()
	if p == nil {
		return 0
	}
	p.expect()
	select {
	case <-p.done:
		return p.code
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.done
		return -3
	}
}

// close releases the log file; the process must be gone.
func (in *instance) close() { in.log.Close() }

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
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
