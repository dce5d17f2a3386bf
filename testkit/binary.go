package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
)

// FindBinary returns the path of a server program tests need (minio,
// nats-server...): the environment variable env when set, then bin/name
// below the module root, where the project's scripts build pinned versions,
// then name on PATH. It returns "" when there is none.
func FindBinary(env, name string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	if root := moduleRoot(); root != "" {
		p := filepath.Join(root, "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// moduleRoot is the nearest directory above the working directory with a
// go.mod file.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}
