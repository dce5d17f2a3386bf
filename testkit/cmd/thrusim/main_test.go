package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mftflow/mftflow/testkit/thrusim"
)

func TestFeedPickups(t *testing.T) {
	cfg := thrusim.Config{Flows: []thrusim.FlowConfig{{Code: "TRN1", SecretKey: "a"}, {Code: "TRN2", SecretKey: "b"}}}
	site, err := thrusim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "TRN2"), 0o700)
	os.WriteFile(filepath.Join(dir, "top.txt"), []byte("1"), 0o600)
	os.WriteFile(filepath.Join(dir, "TRN2", "a.txt"), []byte("2"), 0o600)
	os.WriteFile(filepath.Join(dir, "TRN2", "b.txt"), []byte("3"), 0o600)
	take(site, "TRN1", dir)
	for _, f := range cfg.Flows {
		take(site, f.Code, filepath.Join(dir, f.Code))
	}
	if a, b := site.PickupQueue("TRN1"), site.PickupQueue("TRN2"); a != 1 || b != 2 {
		t.Fatalf("queues: TRN1 %d, TRN2 %d", a, b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", "*.txt"))
	top, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	if len(left)+len(top) != 0 {
		t.Fatalf("files left: %v %v", left, top)
	}
}
