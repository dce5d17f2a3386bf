package flowfile

import (
	"errors"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

var scheduleKeys = []string{"cron", "time_zone", "windows", "holidays"}

// schedule parses the schedule block and checks it, reporting a bad entry
// at its own position.
func (p *parser) schedule(e pair) *pipeline.Schedule {
	var s pipeline.Schedule
	single := map[string]*yaml.Node{}
	lists := map[string][]*yaml.Node{}
	for _, se := range p.block(e, strings.Join(scheduleKeys, ", ")) {
		path := "schedule." + se.key
		switch se.key {
		case "cron", "time_zone":
			v, n, ok := p.setting(se, path, nameField)
			if !ok || v == nil {
				continue
			}
			single[se.key] = n
			if se.key == "cron" {
				s.Cron = v.(string)
			} else {
				s.TimeZone = v.(string)
			}
		case "windows", "holidays":
			v, n, ok := p.setting(se, path, stringsField)
			if !ok || v == nil {
				continue
			}
			single[se.key] = n
			if n.Kind == yaml.SequenceNode {
				lists[se.key] = n.Content
			}
			if se.key == "windows" {
				s.Windows = v.([]string)
			} else {
				s.Holidays = v.([]string)
			}
		default:
			p.errorf(se.k, "unknown key %q (known: %s)", se.key, strings.Join(scheduleKeys, ", "))
		}
	}
	if _, err := s.Compile(); err != nil {
		var se *pipeline.ScheduleError
		at := e.k
		if errors.As(err, &se) {
			if n := single[se.Field]; n != nil {
				at = n
			}
			if l := lists[se.Field]; se.Index >= 0 && se.Index < len(l) {
				at = l[se.Index]
			}
		}
		p.errorf(at, "%v", err)
	}
	return &s
}
