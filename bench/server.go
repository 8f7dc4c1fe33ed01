package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orgsvc/orgsvc/internal/proc"
)

// buildService builds cmd/orgsvc of the service module (the module
// around the working directory, or the one the tool's module replaces
// it with) into dir and returns the binary's path and the source's git
// revision.
func buildService(ctx context.Context, dir string) (bin, revision string, err error) {
	root, err := proc.ModuleDir(ctx)
	if err != nil {
		return "", "", fmt.Errorf("%w\nrun from the repository, or pass -bin or -target", err)
	}
	if bin, err = proc.Build(ctx, dir); err != nil {
		return "", "", err
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
	DataDir  string // the embedded store's files
	Cost     int
	LogPath  string

	p    *proc.Process
	log  *os.File
	stop sync.Once
}

// inheritedVars are the only variables of the tool's environment the
// service inherits; every setting of the service is set by the tool, so
// that nothing from the tool's environment (or a .env file) leaks in.
var inheritedVars = []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"}

// inheritedEnv is the inheritedVars of the tool's environment that are set.
func inheritedEnv() []string {
	var env []string
	for _, k := range inheritedVars {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// serviceEnv is the service's environment. The per-address abuse limits
// are turned off: every request of a load test comes from one loopback
// address, so they would measure the limiter rather than the service; so
// is the rate per organization (ORG_RATE_PER_SECOND), since most
// scenarios load one organization. The
// per-e-mail login limit stays at the service's default; the login
// scenario cycles through enough admins to stay under it. extra are more
// NAME=value settings (ORGSVC_AUDIT_OFF=1 for audit-write).
func serviceEnv(database, httpAddr, mongoAddr, dataDir string, cost int, extra ...string) []string {
	return append(append(inheritedEnv(),
		"MONGO_URI=",
		"MONGO_DB="+database,
		"HTTP_ADDR="+httpAddr,
		"EMBEDDED_MONGO_ADDR="+mongoAddr,
		"DATA_DIR="+dataDir,
		"BCRYPT_COST="+strconv.Itoa(cost),
		"LOG_LEVEL=warn",
		"LOGIN_RATE_PER_ADDRESS=0",
		"CREATE_RATE_PER_ADDRESS=0",
		"ORG_RATE_PER_SECOND=0",
	), extra...)
}

// startService starts bin on the embedded store under workDir/name-data,
// listening on free loopback ports, and waits until /health answers; extra
// goes into its environment (see serviceEnv).
func startService(ctx context.Context, bin, workDir, outDir, name, database string, cost int, extra ...string) (*service, error) {
	httpAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	mongoAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(workDir, name+"-data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	s := &service{
		Name:     name,
		URL:      "http://" + httpAddr,
		MongoURI: "mongodb://" + mongoAddr + "/",
		DataDir:  dataDir,
		Cost:     cost,
		LogPath:  filepath.Join(outDir, "service-"+name+".log"),
	}
	if s.log, err = os.Create(s.LogPath); err != nil {
		return nil, err
	}
	// The working directory holds no .env, so none is read.
	s.p, err = proc.Start(proc.Spec{
		Bin: bin, Args: []string{"serve"}, Dir: workDir,
		Env:    serviceEnv(database, httpAddr, mongoAddr, dataDir, cost, extra...),
		Stdout: s.log, Stderr: s.log,
	})
	if err != nil {
		s.log.Close()
		return nil, err
	}
	if err := s.p.WaitHealthy(ctx, s.URL, 3*time.Minute); err != nil {
		s.Stop()
		return nil, fmt.Errorf("service %s: %w; its log:\n%s", name, err, proc.Tail(s.LogPath, 20))
	}
	return s, nil
}

// PID is the service's process id.
func (s *service) PID() int { return s.p.PID() }

// Stop ends the service: SIGTERM, then SIGKILL if it has not exited
// within 20 s. It is safe to call more than once.
func (s *service) Stop() {
	s.stop.Do(func() {
		s.p.Stop(20 * time.Second)
		s.log.Close()
	})
}

// alive fails, with the end of its log, when the process has ended.
func (s *service) alive() error {
	if s.p.Exited() {
		return fmt.Errorf("the %s service exited; its log:\n%s", s.Name, proc.Tail(s.LogPath, 20))
	}
	return nil
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
