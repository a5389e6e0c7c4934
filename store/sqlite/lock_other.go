//go:build !unix

package sqlite

import (
	"os"
	"path/filepath"
)

// lockDir on platforms without flock only creates the lock file; run one process per directory.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o640)
}

func unlockDir(f *os.File) { f.Close() }
