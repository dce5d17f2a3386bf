package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestLockData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := lockData(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files, so a second open in this process
	// conflicts just as another process would.
	_, err = lockData(dir, true)
	want := fmt.Sprintf("data directory %s is in use by another runner (pid %d); stop it or use --data", dir, os.Getpid())
	var inUse *inUseError
	if !errors.As(err, &inUse) || err.Error() != want {
		t.Fatalf("second lock: %v, want %q", err, want)
	}
	l.release()
	l2, err := lockData(dir, false)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.release()
}

func TestLockDataMissingDir(t *testing.T) {
	if _, err := lockData(filepath.Join(t.TempDir(), "nope"), false); err == nil {
		t.Fatal("locking a missing directory without create succeeded")
	}
}

func TestConnectForStatusNoState(t *testing.T) {
	base := t.TempDir()
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{filepath.Join(base, "missing"), empty} {
		g := &globalOptions{data: data, logger: slog.New(slog.DiscardHandler)}
		_, err := connectForStatus(g)
		want := fmt.Sprintf(`no runner state in %s (start a flow with "runner run FLOW.yaml")`, data)
		if err == nil || err.Error() != want {
			t.Errorf("data %s: %v, want %q", data, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "missing")); !os.IsNotExist(err) {
		t.Errorf("status created the data directory: %v", err)
	}
	// The lock taken to look inside was released.
	l, err := lockData(empty, false)
	if err != nil {
		t.Fatalf("lock after status: %v", err)
	}
	l.release()
}

func TestRedactURLs(t *testing.T) {
	got := redactURLs("nats://user:secret@n1:4222, nats://n2:4222,tls://tok@n3:4222")
	want := "nats://user:xxxxx@n1:4222,nats://n2:4222,tls://xxxxx@n3:4222"
	if got != want {
		t.Errorf("redactURLs = %q, want %q", got, want)
	}
}
