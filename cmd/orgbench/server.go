package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// modulePath is the module whose ./cmd/orgsvc is built.
const modulePath = "github.com/orgsvc/orgsvc"

// buildService builds ./cmd/orgsvc of the module around the working
// directory into dir and returns the binary's path and the source's git
// revision.
func buildService(ctx context.Context, dir string) (bin, revision string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", errors.New("not inside the orgsvc module: run from the repository, or pass -bin or -target")
	}
	mod, err := os.ReadFile(gomod)
	if err != nil {
		return "", "", err
	}
	if !bytes.Contains(mod, []byte("module "+modulePath+"\n")) {
		return "", "", fmt.Errorf("%s is not the module %s: run from the repository, or pass -bin or -target", gomod, modulePath)
	}
	root := filepath.Dir(gomod)
	bin = filepath.Join(dir, "orgsvc")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/orgsvc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/orgsvc: %w\n%s", err, out)
	}
	return bin, gitRevision(ctx, root), nil
}

// gitRevision names the commit checked out in root, with "+ uncommitted
// changes" when the work tree differs from it; empty outside git.
func gitRevision(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && len(bytes.TrimSpace(status)) > 0 {
		rev += " + uncommitted changes"
	}
	return rev
}

// service is an orgsvc process started by the tool, on the embedded store.
type service struct {
	Name     string
	URL      string // http://127.0.0.1:port
	MongoURI string // the embedded store's address, for the driver
	Cost     int
	LogPath  string

	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{}
	waitErr error
	stop    sync.Once
}

// inheritedVars are the only variables of the tool's environment the
// service inherits; every setting of the service is set by the tool, so
// that nothing from the tool's environment (or a .env file) leaks in.
var inheritedVars = []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"}

// serviceEnv is the service's environment. The per-address abuse limits
// are turned off: every request of a load test comes from one loopback
// address, so they would measure the limiter rather than the service. The
// per-e-mail login limit stays at the service's default; the login
// scenario cycles through enough admins to stay under it.
func serviceEnv(database string, httpPort, mongoPort int, dataDir string, cost int) []string {
	var env []string
	for _, k := range inheritedVars {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env,
		"MONGO_URI=",
		"MONGO_DB="+database,
		"HTTP_ADDR=127.0.0.1:"+strconv.Itoa(httpPort),
		"EMBEDDED_MONGO_ADDR=127.0.0.1:"+strconv.Itoa(mongoPort),
		"DATA_DIR="+dataDir,
		"BCRYPT_COST="+strconv.Itoa(cost),
		"LOG_LEVEL=warn",
		"LOGIN_RATE_PER_ADDRESS=0",
		"CREATE_RATE_PER_ADDRESS=0",
	)
}

// startService starts bin on the embedded store under workDir/name-data,
// listening on free loopback ports, and waits until /health answers.
func startService(ctx context.Context, bin, workDir, outDir, name, database string, cost int) (*service, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	mongoPort, err := freePort()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(workDir, name+"-data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	s := &service{
		Name:     name,
		URL:      "http://127.0.0.1:" + strconv.Itoa(httpPort),
		MongoURI: "mongodb://127.0.0.1:" + strconv.Itoa(mongoPort) + "/",
		Cost:     cost,
		LogPath:  filepath.Join(outDir, "service-"+name+".log"),
		done:     make(chan struct{}),
	}
	if s.log, err = os.Create(s.LogPath); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve")
	// The working directory holds no .env, so none is read.
	s.cmd.Dir = workDir
	s.cmd.Env = serviceEnv(database, httpPort, mongoPort, dataDir, cost)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	setProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitHealthy(ctx, 3*time.Minute); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// PID is the service's process id.
func (s *service) PID() int { return s.cmd.Process.Pid }

func (s *service) waitHealthy(ctx context.Context, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		res, err := client.Get(s.URL + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("service %s exited before answering /health (%v); its log:\n%s", s.Name, s.waitErr, tail(s.LogPath, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service %s did not answer /health within %s; its log:\n%s", s.Name, limit, tail(s.LogPath, 20))
		}
	}
}

// Stop ends the service: SIGTERM, then SIGKILL if it has not exited
// within 20 s. It is safe to call more than once.
func (s *service) Stop() {
	s.stop.Do(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		s.log.Close()
	})
}

// alive fails, with the end of its log, when the process has ended.
func (s *service) alive() error {
	if s.Exited() {
		return fmt.Errorf("the %s service exited; its log:\n%s", s.Name, tail(s.LogPath, 20))
	}
	return nil
}

// Exited reports whether the process has ended.
func (s *service) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// rssWatch samples a process's resident set size every 100 ms and keeps
// the largest value.
type rssWatch struct {
	pid  int
	quit chan struct{}
	done chan struct{}
	peak int64 // bytes
}

// watchRSS starts sampling pid; pid 0 watches nothing.
func watchRSS(pid int) *rssWatch {
	w := &rssWatch{pid: pid, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		if pid == 0 {
			return
		}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := procStatus(pid, "VmRSS"); err == nil && v > w.peak {
				w.peak = v
			}
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Peak stops sampling and returns the largest RSS seen, in bytes (0 when
// unknown).
func (w *rssWatch) Peak() int64 {
	close(w.quit)
	<-w.done
	if w.pid != 0 {
		if v, err := procStatus(w.pid, "VmRSS"); err == nil && v > w.peak {
			w.peak = v
		}
	}
	return w.peak
}

// procStatus reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n * 1024, err
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// checkLoopbackURL accepts only http URLs on a loopback host.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http URL", raw)
	}
	return checkLoopbackHost(u.Hostname())
}

// checkLoopbackMongo accepts only mongodb:// URIs whose hosts are all
// loopback.
func checkLoopbackMongo(raw string) error {
	rest, ok := strings.CutPrefix(raw, "mongodb://")
	if !ok {
		return fmt.Errorf("%q: only mongodb:// URIs on loopback hosts are accepted", raw)
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	for hp := range strings.SplitSeq(rest, ",") {
		host := hp
		if h, _, err := net.SplitHostPort(hp); err == nil {
			host = h
		}
		if err := checkLoopbackHost(host); err != nil {
			return err
		}
	}
	return nil
}

func checkLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("host %q is not a loopback address", host)
}
