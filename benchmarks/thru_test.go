package benchmarks

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
)

// Keys and codes of the simulated site; the flow files and curl use the same.
const (
	thruSiteAccessKey = "bench-site-access-key"
	thruAESKey        = "000102030405060708090a0b0c0d0e0f"
	thruFlowCode      = "TRNBENCH"
	thruFlowSecret    = "bench-flow-secret"
	thruEndpointCode  = "ENDBENCH"
	thruEndpointID    = "1"
	thruAPIKey        = "bench-api-key"
)

// thruSimConfig is the simulated site: no pickup delay, and chunk limits well
// above the runner's 8 MiB parts so that they never decide the chunking.
var thruSimConfig = fmt.Sprintf(`site_access_key: %s
aes_key: %s
timestamp_window: 60s
pickup_delay: 0s
max_chunk_size: %d
dropoff_max_chunk_size: %d
flows:
  - code: %s
    name: Benchmark
    secret_key: %s
    endpoints:
      - code: %s
        id: "%s"
api_keys: [%s]
`, thruSiteAccessKey, thruAESKey, 64<<20, 128<<20, thruFlowCode, thruFlowSecret, thruEndpointCode, thruEndpointID, thruAPIKey)

const thruDropOffFlow = `name: bench-thru-dropoff
source:
  local:
    path: %s
    watch: false
    stable_for: 0s
    after: leave
sinks:
  - name: thru
    thru:
      mode: dropoff
      base_url: %s
      flow_code: ` + thruFlowCode + `
      site_access_key: ` + thruSiteAccessKey + `
      flow_secret_key: ` + thruFlowSecret + `
      aes_key: ` + thruAESKey + `
`

// thruSessionFlow uploads through the Content API; simple_threshold 0 makes
// every file go up in an upload session, whatever its size.
const thruSessionFlow = `name: bench-thru-session
source:
  local:
    path: %s
    watch: false
    stable_for: 0s
    after: leave
sinks:
  - name: thru
    thru:
      mode: content
      base_url: %s
      endpoint_path: %s
      api_key: ` + thruAPIKey + `
      simple_threshold: 0
`

func thruEndpointPath() string {
	return thru.EndpointPath{FlowCode: thruFlowCode, EndpointCode: thruEndpointCode, ID: thruEndpointID}.String()
}

// thruSim is a standalone simulator process. It is a process of its own, so
// the deliveries it holds in memory count neither in the runner's peak RSS
// (measured with wait4 on the runner alone) nor in this process's heap.
type thruSim struct {
	URL    string
	cmd    *exec.Cmd
	stderr lockedBuffer
}

// lockedBuffer collects the simulator's log while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startThruSim starts the simulator on a free port of 127.0.0.1 and stops
// it when b ends.
func startThruSim(b *testing.B, bin string) *thruSim {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfg, []byte(thruSimConfig), 0o644); err != nil {
		b.Fatal(err)
	}
	s := &thruSim{}
	s.cmd = exec.Command(bin, "--listen", "127.0.0.1:0", "--config", cfg, "--spool-dir", filepath.Join(dir, "spool"))
	s.cmd.Stderr = &s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.stop)
	// It prints its base URL once it listens.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("thrusim did not start: %v\n%s", err, s.stderr.String())
	}
	s.URL = strings.TrimSpace(line)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return s
}

func (s *thruSim) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// inputSum is the size and SHA-256 of one input file.
type inputSum struct {
	size   int64
	sha256 string
}

// inputSums returns the size and SHA-256 of each of the workload's files,
// by file name.
func inputSums(w Workload, in string) (map[string]inputSum, error) {
	sums := make(map[string]inputSum, w.Files)
	for i := range w.Files {
		name := inputFile(in, i)
		sum, err := fileSHA256(name)
		if err != nil {
			return nil, err
		}
		sums[filepath.Base(name)] = inputSum{w.Size, sum}
	}
	return sums, nil
}

// checkDeliveries fails b unless the site received, through via, each file
// of want exactly runs times, byte for byte, and nothing else.
func (s *thruSim) checkDeliveries(b *testing.B, runs int, via string, want map[string]inputSum) {
	b.Helper()
	resp, err := http.Get(s.URL + "/_admin/deliveries")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var ds []struct {
		Via    string `json:"via"`
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil {
		b.Fatalf("thrusim deliveries: %v", err)
	}
	if len(ds) != runs*len(want) {
		b.Fatalf("thrusim received %d files, want %d (%d runs of %d files)", len(ds), runs*len(want), runs, len(want))
	}
	seen := map[string]int{}
	for _, d := range ds {
		w, ok := want[d.Name]
		if !ok {
			b.Fatalf("thrusim received %q, which is not an input file", d.Name)
		}
		if d.Via != via || d.Size != w.size || d.SHA256 != w.sha256 {
			b.Fatalf("thrusim received %s by %s, %d bytes sha256 %s, want by %s, %d bytes sha256 %s", d.Name, d.Via, d.Size, d.SHA256, via, w.size, w.sha256)
		}
		seen[d.Name]++
	}
	for name, n := range seen {
		if n != runs {
			b.Fatalf("thrusim received %s %d times in %d runs", name, n, runs)
		}
	}
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// curlParallel is how many uploads curl runs at once for many files: the
// runner's default number of files delivered to a sink at once.
const curlParallel = "4"

// curlConfig writes a curl config file (curl -K) into dir that sends each
// of the workload's files in one Content API simple upload to site, and
// returns its path. Part 1 of each upload is the file's metadata JSON (read
// from a file of its own as a text field), part 2 the file itself.
func curlConfig(w Workload, in, dir, site string) (string, error) {
	var cfg strings.Builder
	cfg.WriteString("silent\n")
	for i := range w.Files {
		file := inputFile(in, i)
		meta, err := json.Marshal(thru.FileMetadata{EndpointPath: thruEndpointPath(), Attributes: thru.FileAttributes{FileName: filepath.Base(file)}})
		if err != nil {
			return "", err
		}
		metaFile := filepath.Join(dir, fmt.Sprintf("metadata-%05d.json", i))
		if err := os.WriteFile(metaFile, meta, 0o644); err != nil {
			return "", err
		}
		if i > 0 {
			cfg.WriteString("next\n")
		}
		fmt.Fprintf(&cfg, "url = %q\nfail\noutput = %q\nheader = %q\nform = %q\nform = %q\n",
			site+thru.PathContent, os.DevNull,
			thru.APIKeyHeader+": "+thruAPIKey,
			thru.MetadataFormName+"=<"+metaFile+";type=application/json",
			thru.ContentFormName+"=@"+file+";type=application/octet-stream")
	}
	path := filepath.Join(dir, "curl.conf")
	return path, os.WriteFile(path, []byte(cfg.String()), 0o644)
}

// BenchmarkLocalToThru moves each workload to a simulated Thru site
// (testkit/cmd/thrusim, a separate process on loopback) with the runner, by
// chunked drop-off and by Content API upload sessions, next to curl sending
// the same files in Content API simple uploads to the same site (one curl
// process; many files 4 at once, as the runner delivers them) and the raw
// JetStream ceiling for the same bytes. Every sub-benchmark gets a fresh
// simulator, since it holds every delivered file in memory; for the same
// reason the 4 GiB workload is skipped. Each run is checked: the site must
// have received every file, byte for byte.
func BenchmarkLocalToThru(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	sim, err := Build("github.com/mftflow/mftflow/testkit/cmd/thrusim")
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range Workloads {
		b.Run(w.Name(), func(b *testing.B) {
			if ok, why := w.Enabled(); !ok {
				b.Skip(why)
			}
			in, err := w.Materialize(dir)
			if err != nil {
				b.Fatal(err)
			}
			want, err := inputSums(w, in)
			if err != nil {
				b.Fatal(err)
			}
			runner := func(b *testing.B, flowText, via string) {
				site := startThruSim(b, sim)
				text := fmt.Sprintf(flowText, in, site.URL)
				if via == "content" {
					text = fmt.Sprintf(flowText, in, site.URL, thruEndpointPath())
				}
				runs := measure(b, w, func(work string) []string { return runnerCommand(b, bin, work, text) })
				site.checkDeliveries(b, runs, via, want)
			}
			b.Run("jetstream", func(b *testing.B) { busCeiling(b, w) })
			b.Run("runner-dropoff", func(b *testing.B) { runner(b, thruDropOffFlow, "dropoff") })
			b.Run("runner-session", func(b *testing.B) { runner(b, thruSessionFlow, "content") })
			b.Run("curl", func(b *testing.B) {
				curl, err := exec.LookPath("curl")
				if err != nil {
					b.Skip("curl is not installed (Debian: apt-get install curl)")
				}
				if w.Size > thru.SimpleUploadLimit {
					b.Skipf("%s is above the Content API's simple-upload limit of %d bytes", w.Name(), int64(thru.SimpleUploadLimit))
				}
				site := startThruSim(b, sim)
				conf, err := curlConfig(w, in, b.TempDir(), site.URL)
				if err != nil {
					b.Fatal(err)
				}
				runs := measure(b, w, func(string) []string {
					return []string{curl, "--parallel", "--parallel-max", curlParallel, "-K", conf}
				})
				site.checkDeliveries(b, runs, "content", want)
			})
		})
	}
}
