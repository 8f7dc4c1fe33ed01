//go:build !unix

package store

import "errors"

const LockFile = "orgsvc.lock"

var ErrDataDirInUse = errors.New("DATA_DIR is in use")

type dirLock struct{}

// lockDir refuses: without flock the embedded store cannot be owned by one
// process, and two processes on one DATA_DIR corrupt each other's work.
func lockDir(string) (*dirLock, error) {
	return nil, errors.New("the embedded database needs a Unix system (flock); set MONGO_URI")
}

func (*dirLock) release() error { return nil }
