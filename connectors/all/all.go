// Package all builds a registry holding every built-in connector and stage,
// the way rclone's backend/all gathers its backends. The runner uses it;
// applications that embed the engine may use it too, or build their own
// registry with only the connectors they need.
package all

import (
	"fmt"

	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/connectors/s3"
	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// registrars lists the Register function of every built-in package.
var registrars = []struct {
	pkg      string
	register func(*pipeline.Registry) error
}{
	{"connectors/local", local.Register},
	{"connectors/s3", s3.Register},
	{"connectors/thru", thru.Register},
	{"pipeline/stages", stages.Register},
}

// Registry returns a new registry with every built-in source, stage and sink.
// Each call returns a fresh registry, so callers may add their own connectors
// to it without affecting others.
func Registry() (*pipeline.Registry, error) {
	r := pipeline.NewRegistry()
	for _, reg := range registrars {
		if err := reg.register(r); err != nil {
			return nil, fmt.Errorf("registering built-in connectors of %s: %w", reg.pkg, err)
		}
	}
	return r, nil
}
