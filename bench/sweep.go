package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
)

// Point is one combination of settings. A zero field keeps what the flow
// (or its defaults) says.
type Point struct {
	ChunkSize   int64  `json:"chunk_size"`
	PartSize    int64  `json:"part_size,omitempty"`
	Parallelism int    `json:"parallelism"`
	Compression string `json:"compression"`
	// Payload is bus.payload: "bytes" or "reference" ("" in older results).
	Payload string `json:"payload,omitempty"`
}

// String labels the point as "chunk 1MiB, part 8MiB, parallelism 4, s2".
func (p Point) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chunk %s", pipeline.ExactSize(p.ChunkSize))
	if p.PartSize > 0 {
		fmt.Fprintf(&b, ", part %s", pipeline.ExactSize(p.PartSize))
	}
	fmt.Fprintf(&b, ", parallelism %d, %s", p.Parallelism, p.Compression)
	if p.Payload == pipeline.PayloadReference {
		b.WriteString(", by reference")
	}
	return b.String()
}

// Sweep lists the values to try for each setting. An empty list keeps the
// flow's value.
type Sweep struct {
	ChunkSizes   []int64  `json:"chunk_sizes,omitempty"`
	PartSizes    []int64  `json:"part_sizes,omitempty"`
	Parallelisms []int    `json:"parallelisms,omitempty"`
	Compressions []string `json:"compressions,omitempty"`
	Payloads     []string `json:"payloads,omitempty"`
}

// Points returns every combination, chunk size varying slowest and
// payload fastest. base fills in the settings the sweep leaves out.
func (s Sweep) Points(base Point) []Point {
	chunks := s.ChunkSizes
	if len(chunks) == 0 {
		chunks = []int64{base.ChunkSize}
	}
	parts := s.PartSizes
	if len(parts) == 0 {
		parts = []int64{base.PartSize}
	}
	pars := s.Parallelisms
	if len(pars) == 0 {
		pars = []int{base.Parallelism}
	}
	comps := s.Compressions
	if len(comps) == 0 {
		comps = []string{base.Compression}
	}
	payloads := s.Payloads
	if len(payloads) == 0 {
		payloads = []string{base.Payload}
	}
	var out []Point
	for _, c := range chunks {
		for _, ps := range parts {
			for _, p := range pars {
				for _, z := range comps {
					for _, pl := range payloads {
						out = append(out, Point{ChunkSize: c, PartSize: ps, Parallelism: p, Compression: z, Payload: pl})
					}
				}
			}
		}
	}
	return out
}

// splitList splits a comma-separated flag value; every item must be
// non-empty.
func splitList(flag, s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s: empty list: give one or more values separated by commas", flag)
	}
	items := strings.Split(s, ",")
	for i, it := range items {
		items[i] = strings.TrimSpace(it)
		if items[i] == "" {
			return nil, fmt.Errorf("%s: empty value in %q: separate values with single commas", flag, s)
		}
	}
	return items, nil
}

// ParseSizes parses a comma-separated list of sizes for flag, each at least
// min bytes. examples shows the syntax in errors.
func ParseSizes(flag, s string, min int64, examples string) ([]int64, error) {
	items, err := splitList(flag, s)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, it := range items {
		n, err := pipeline.ParseSize(it)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a size (examples: %s)", flag, it, examples)
		}
		if n < min {
			return nil, fmt.Errorf("%s: %q is below the minimum of %s", flag, it, pipeline.ExactSize(min))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// ParseCounts parses a comma-separated list of whole numbers above 0.
func ParseCounts(flag, s string) ([]int, error) {
	items, err := splitList(flag, s)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, it := range items {
		n, err := strconv.Atoi(it)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a whole number above 0 (examples: 1,4,8)", flag, it)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// ParseCompressions parses a comma-separated list of bus compressions.
func ParseCompressions(flag, s string) ([]string, error) {
	return parseWords(flag, s, pipeline.Compressions, "a compression (want none, s2 or zstd)")
}

// ParsePayloads parses a comma-separated list of bus payloads: bytes or
// reference (auto would measure one of the two without saying which).
func ParsePayloads(flag, s string) ([]string, error) {
	return parseWords(flag, s, []string{pipeline.PayloadBytes, pipeline.PayloadReference}, "a payload (want bytes or reference)")
}

// parseWords parses a comma-separated list of words from known; what names
// one in errors.
func parseWords(flag, s string, known []string, what string) ([]string, error) {
	items, err := splitList(flag, s)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		if !slices.Contains(known, it) {
			return nil, fmt.Errorf("%s: %q is not %s", flag, it, what)
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}
