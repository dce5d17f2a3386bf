package thrusim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/connectors/thru"
)

// Defaults of Config.
const (
	DefaultTimestampWindow     = 30 * time.Second
	DefaultPickupDelay         = 10 * time.Second
	DefaultMaxChunkSize        = 8 << 20
	DefaultDropOffMaxChunkSize = 100 << 20
)

// Config describes the simulated site. It can be written in YAML or JSON
// (LoadConfig); the keys are the yaml tags.
type Config struct {
	// SiteURL, when set, must be the site URL inside every auth header.
	SiteURL string `yaml:"site_url"`
	// SiteAccessKey must be the access key inside every auth header.
	SiteAccessKey string `yaml:"site_access_key"`
	// AESKey (32 hex digits or Base64 of 16 bytes) decrypts auth headers;
	// CipherMode is "cbc" (default) or "cbc-fixed-iv" with IV.
	AESKey     string       `yaml:"aes_key"`
	CipherMode string       `yaml:"cipher_mode"`
	IV         string       `yaml:"iv"`
	Flows      []FlowConfig `yaml:"flows"`
	// APIKeys and BearerTokens are accepted by the Content API.
	APIKeys      []string `yaml:"api_keys"`
	BearerTokens []string `yaml:"bearer_tokens"`
	// TimestampWindow is how far a header's time may be from the site's
	// clock; 0 uses DefaultTimestampWindow.
	TimestampWindow Duration `yaml:"timestamp_window"`
	// PickupDelay is the default time between two files of one flow's pickup
	// queue, like Thru's pickup cache; nil uses DefaultPickupDelay.
	PickupDelay *Duration `yaml:"pickup_delay"`
	// MaxChunkSize is the Content API's largest chunk (preflight's
	// maxChunkSize); 0 uses DefaultMaxChunkSize.
	MaxChunkSize int64 `yaml:"max_chunk_size"`
	// DropOffMaxChunkSize is the largest drop-off content chunk; 0 uses
	// DefaultDropOffMaxChunkSize.
	DropOffMaxChunkSize int64 `yaml:"dropoff_max_chunk_size"`
	// SpoolDir holds what the site receives and hands out (chunks,
	// delivered files, pickups), so that a file of any size costs disk,
	// not memory. Default: a new temporary directory that Close removes; a
	// directory given here is kept.
	SpoolDir string `yaml:"spool_dir"`
	// Admin serves the admin endpoints under /_admin/.
	Admin bool `yaml:"admin"`
	// Now is the site's clock; default time.Now.
	Now func() time.Time `yaml:"-"`
}

// FlowConfig is one flow of the site.
type FlowConfig struct {
	Code      string `yaml:"code"`
	Name      string `yaml:"name"`
	SecretKey string `yaml:"secret_key"`
	// PickupDelay overrides Config.PickupDelay for this flow.
	PickupDelay *Duration        `yaml:"pickup_delay"`
	Endpoints   []EndpointConfig `yaml:"endpoints"`
	// Sender is the source organization reported by FileMetadata.
	Sender thru.Organization `yaml:"sender"`
}

// EndpointConfig is one source flow endpoint reachable with the Content API
// at flow:{flow code}/endpoint:{Code}/flowendpoint:{ID}.
type EndpointConfig struct {
	Code string `yaml:"code"`
	ID   string `yaml:"id"`
	// NamePattern (path.Match syntax), when set, must match the file name.
	NamePattern string `yaml:"name_pattern"`
	// MaxFileSize, when positive, limits the file size.
	MaxFileSize int64 `yaml:"max_file_size"`
}

// Duration is a time.Duration written as "10s" in YAML and JSON.
type Duration time.Duration

// D returns a pointer to d as a Duration, for Config.PickupDelay.
func D(d time.Duration) *Duration { v := Duration(d); return &v }

// UnmarshalYAML parses "1m30s" or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if p, err := time.ParseDuration(s); err == nil {
		*d = Duration(p)
		return nil
	}
	var secs float64
	if err := n.Decode(&secs); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	return fmt.Errorf("line %d: want a duration such as 10s or 1m30s, got %q", n.Line, s)
}

// UnmarshalJSON parses "1m30s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		p, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 10s or 1m30s, got %q", s)
		}
		*d = Duration(p)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a duration such as \"10s\", got %s", b)
	}
	*d = Duration(n)
	return nil
}

// MarshalJSON writes d as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads a YAML or JSON config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("thrusim config %s: %v", path, err)
	}
	return c, nil
}

func (c *Config) check() error {
	if c.TimestampWindow <= 0 {
		c.TimestampWindow = Duration(DefaultTimestampWindow)
	}
	if c.PickupDelay == nil {
		c.PickupDelay = D(DefaultPickupDelay)
	}
	if c.MaxChunkSize <= 0 {
		c.MaxChunkSize = DefaultMaxChunkSize
	}
	if c.DropOffMaxChunkSize <= 0 {
		c.DropOffMaxChunkSize = DefaultDropOffMaxChunkSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	codes, secrets := map[string]bool{}, map[string]bool{}
	var errs []error
	for i, f := range c.Flows {
		switch {
		case f.Code == "":
			errs = append(errs, fmt.Errorf("flow %d: code is empty", i+1))
		case codes[f.Code]:
			errs = append(errs, fmt.Errorf("flow %s: code is used twice", f.Code))
		case f.SecretKey == "":
			errs = append(errs, fmt.Errorf("flow %s: secret_key is empty", f.Code))
		case secrets[f.SecretKey]:
			errs = append(errs, fmt.Errorf("flow %s: secret_key is the same as another flow's", f.Code))
		}
		codes[f.Code], secrets[f.SecretKey] = true, true
		for _, e := range f.Endpoints {
			p := thru.EndpointPath{FlowCode: f.Code, EndpointCode: e.Code, ID: e.ID}
			if _, err := thru.ParseEndpointPath(p.String()); err != nil {
				errs = append(errs, fmt.Errorf("flow %s: endpoint %q id %q: %v", f.Code, e.Code, e.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
