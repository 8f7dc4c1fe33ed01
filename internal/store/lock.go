//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in DATA_DIR whose exclusive lock makes its holder
// the one owner of the embedded store; it holds the owner's pid.
const LockFile = "orgsvc.lock"

// ErrDataDirInUse is returned when another process owns DATA_DIR.
var ErrDataDirInUse = errors.New("DATA_DIR is in use")

// dirLock is an exclusive flock on DATA_DIR's lock file. The kernel
// releases it when the process ends, however it ends, so a kill -9 leaves
// no stale lock behind.
type dirLock struct{ f *os.File }

// lockDir takes the lock of dir or fails at once, naming the owner.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("DATA_DIR: lock %s: %w", path, err)
		}
		owner := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				owner = "process " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("%w: %s is held by %s, which runs the embedded database there. "+
			"Stop it first, or give this process another DATA_DIR, or share the owner's database: "+
			"start the owner with EMBEDDED_MONGO_ADDR=127.0.0.1:27017 and run this one with MONGO_URI=mongodb://127.0.0.1:27017 "+
			"(and the owner's JWT_SECRET)", ErrDataDirInUse, dir, owner)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up.
func (l *dirLock) release() error { return l.f.Close() }
