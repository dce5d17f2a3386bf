package flowfile

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

var (
	busKeys       = []string{"chunk_size", "compression", "files", "readers", "window", "retention", "retention_size", "payload", "on_change"}
	compressField = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Compressions}
	payloadField  = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Payloads}
	changeField   = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Changes}
)

// bus parses the bus block and bounds its settings.
func (p *parser) bus(e pair) pipeline.BusSpec {
	var b pipeline.BusSpec
	nodes := map[string]*yaml.Node{} // setting path -> value node, for limits
	for _, be := range p.block(e, strings.Join(busKeys, ", ")) {
		path := "bus." + be.key
		nodes[path] = be.v
		switch be.key {
		case "chunk_size":
			b.ChunkSize = p.chunkSize(be)
		case "compression":
			b.Compression = p.text(be, path, compressField)
		case "payload":
			if v, n, ok := p.setting(be, path, payloadField); ok && v != nil {
				b.Payload, p.payloadAt = v.(string), n
			}
		case "on_change":
			b.OnChange = p.text(be, path, changeField)
		case "files":
			b.Files = p.count0(be, path)
		case "readers":
			b.Readers = p.count0(be, path)
		case "window":
			b.Window = p.size(be, path)
		case "retention":
			b.Retention = p.duration(be, path)
		case "retention_size":
			b.RetentionSize = p.size(be, path)
		default:
			p.errorf(be.k, "unknown key %q (known: %s)", be.key, strings.Join(busKeys, ", "))
		}
	}
	for _, l := range b.Limits() {
		p.limit(l, nodes[l.Setting], e.k)
	}
	return b
}

// chunkSize parses bus.chunk_size: at least pipeline.MinChunkSize, and
// within what the NATS server carries (Options.Chunk); 0 when refused.
func (p *parser) chunkSize(e pair) int64 {
	v, n, ok := p.setting(e, "bus.chunk_size", sizeField)
	if !ok || v == nil {
		return 0
	}
	size := v.(int64)
	if size > 0 && size < pipeline.MinChunkSize {
		p.errorf(n, "bus.chunk_size: %d bytes is too small: use at least 4KiB", size)
		return 0
	}
	if c := p.chunk; c.Max > 0 && size > c.Max && size <= pipeline.MaxChunkSize {
		p.limit(&pipeline.LimitError{Setting: "bus.chunk_size", Value: size, Limit: c.Max, Size: true, What: c.Why, Fix: c.Fix}, n, n)
	}
	return size
}
