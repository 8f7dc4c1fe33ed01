package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/orgsvc/orgsvc/internal/proc"
)

// Build builds the service (cmd/orgsvc of the module around the working
// directory) into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) { return proc.Build(ctx, dir) }

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr() (string, error) { return proc.FreeAddr() }

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
	cur    *started
	starts int
}

// started is one process of an instance.
type started struct {
	n        int // which start of its instance
	p        *proc.Process
	done     <-chan struct{}
	code     int // exit status, once done; -1 when ended by a signal
	expected chan struct{}
	once     sync.Once
}

// expect marks the process's end as the run's doing.
func (p *started) expect() { p.once.Do(func() { close(p.expected) }) }

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
	pp, err := proc.Start(proc.Spec{Bin: in.bin, Dir: in.dir, Env: in.env, Stdout: in.log, Stderr: in.log})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	p := &started{n: in.starts, p: pp, done: done, expected: make(chan struct{})}
	in.cur = p
	go func() {
		p.code = pp.Code()
		close(done)
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
func (in *instance) process() *started {
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
	err := p.p.WaitHealthy(ctx, in.base, within)
	if err == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%s %v; its log ends:\n%s", in.name, err, tail(in.logPath, 20))
}

// kill ends the current process with SIGKILL and waits for it.
func (in *instance) kill() error {
	p := in.process()
	if p == nil {
		return errors.New("not started")
	}
	p.expect()
	if err := p.p.Kill(); err != nil {
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
	code, killed := p.p.Stop(within)
	<-p.done
	if killed {
		return -3
	}
	return code
}

// close releases the log file; the process must be gone.
func (in *instance) close() { in.log.Close() }

// tail returns the last n lines of the file at path.
func tail(path string, n int) string { return proc.Tail(path, n) }
