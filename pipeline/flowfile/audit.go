package flowfile

import (
	"strings"

	"github.com/mftflow/mftflow/pipeline"
)

var auditKeys = []string{"max_age", "max_bytes"}

// audit parses the audit block: present (even empty), it turns the trail on.
func (p *parser) audit(e pair) *pipeline.AuditSpec {
	a := &pipeline.AuditSpec{}
	for _, ae := range p.block(e, strings.Join(auditKeys, ", ")) {
		switch ae.key {
		case "max_age":
			a.MaxAge = p.duration(ae, "audit.max_age")
		case "max_bytes":
			a.MaxBytes = p.size(ae, "audit.max_bytes")
		default:
			p.errorf(ae.k, "unknown key %q (known: %s)", ae.key, strings.Join(auditKeys, ", "))
		}
	}
	return a
}
