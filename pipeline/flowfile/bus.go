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

func (p *parser) bus(e pair) pipeline.BusSpec {
	var b pipeline.BusSpec
	nodes := map[string]*yaml.Node{} // setting path -> value node, for limits
	for _, be := range p.block(e, strings.Join(busKeys, ", ")) {
		nodes["bus."+be.key] = be.v
		switch be.key {
		case "chunk_size":
			v, n, ok := p.setting(be, "bus.chunk_size", sizeField)
			if !ok || v == nil {
				continue
			}
			size := v.(int64)
			if size > 0 && size < pipeline.MinChunkSize {
				p.errorf(n, "bus.chunk_size: %d bytes is too small: use at least 4KiB", size)
				continue
			}
			if c := p.chunk; c.Max > 0 && size > c.Max && size <= pipeline.MaxChunkSize {
				p.limit(&pipeline.LimitError{Setting: "bus.chunk_size", Value: size, Limit: c.Max, Size: true, What: c.Why, Fix: c.Fix}, n, n)
			}
			b.ChunkSize = size
		case "compression":
			v, _, ok := p.setting(be, "bus.compression", compressField)
			if ok && v != nil {
				b.Compression = v.(string)
			}
		case "payload":
			if v, n, ok := p.setting(be, "bus.payload", payloadField); ok && v != nil {
				b.Payload, p.payloadAt = v.(string), n
			}
		case "on_change":
			if v, _, ok := p.setting(be, "bus.on_change", changeField); ok && v != nil {
				b.OnChange = v.(string)
			}
		case "files":
			b.Files = p.count0(be, "bus.files")
		case "readers":
			b.Readers = p.count0(be, "bus.readers")
		case "window":
			if v, _, ok := p.setting(be, "bus.window", sizeField); ok && v != nil {
				b.Window = v.(int64)
			}
		case "retention":
			b.Retention = p.duration(be, "bus.retention")
		case "retention_size":
			if v, _, ok := p.setting(be, "bus.retention_size", sizeField); ok && v != nil {
				b.RetentionSize = v.(int64)
			}
		default:
			p.errorf(be.k, "unknown key %q (known: %s)", be.key, strings.Join(busKeys, ", "))
		}
	}
	for _, l := range b.Limits() {
		p.limit(l, nodes[l.Setting], e.k)
	}
	return b
}
