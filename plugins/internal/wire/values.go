package wire

import (
	"fmt"
	"sort"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
)

// FileToPB converts a file for the wire.
func FileToPB(f pipeline.File) *pb.File {
	var mod int64
	if !f.ModTime.IsZero() {
		mod = f.ModTime.UnixNano()
	}
	return &pb.File{Id: f.ID, Key: f.Key, Name: f.Name, Size: f.Size, Sha256: f.SHA256, ModTimeUnixNano: mod, Attrs: f.Attrs}
}

// FileFromPB converts a file from the wire. A nil message is the zero file.
func FileFromPB(m *pb.File) pipeline.File {
	if m == nil {
		return pipeline.File{}
	}
	f := pipeline.File{ID: m.Id, Key: m.Key, Name: m.Name, Size: m.Size, SHA256: m.Sha256, Attrs: m.Attrs}
	if m.ModTimeUnixNano != 0 {
		f.ModTime = time.Unix(0, m.ModTimeUnixNano).UTC()
	}
	return f
}

// OutcomeToPB converts an outcome for the wire.
func OutcomeToPB(o pipeline.Outcome) *pb.Outcome {
	m := &pb.Outcome{Status: int32(o.Status), Message: o.Message, RunId: o.RunID, Attrs: o.Attrs}
	if len(o.Sinks) > 0 {
		m.Sinks = make(map[string]*pb.SinkResult, len(o.Sinks))
		for name, r := range o.Sinks {
			m.Sinks[name] = &pb.SinkResult{Committed: r.Committed, Error: r.Error}
		}
	}
	return m
}

// OutcomeFromPB converts an outcome from the wire.
func OutcomeFromPB(m *pb.Outcome) pipeline.Outcome {
	o := pipeline.Outcome{Status: pipeline.Status(m.GetStatus()), Message: m.GetMessage(), RunID: m.GetRunId(), Attrs: m.GetAttrs()}
	if len(m.GetSinks()) > 0 {
		o.Sinks = make(map[string]pipeline.SinkResult, len(m.Sinks))
		for name, r := range m.Sinks {
			o.Sinks[name] = pipeline.SinkResult{Committed: r.GetCommitted(), Error: r.GetError()}
		}
	}
	return o
}

// ValueToPB converts a config value as pipeline.Config holds it (string, int,
// bool, time.Duration, int64, []string, map[string]string).
func ValueToPB(v any) (*pb.Value, error) {
	switch x := v.(type) {
	case string:
		return &pb.Value{Kind: &pb.Value_String_{String_: x}}, nil
	case int:
		return &pb.Value{Kind: &pb.Value_Int{Int: int64(x)}}, nil
	case int64:
		return &pb.Value{Kind: &pb.Value_Int{Int: x}}, nil
	case bool:
		return &pb.Value{Kind: &pb.Value_Bool{Bool: x}}, nil
	case time.Duration:
		return &pb.Value{Kind: &pb.Value_String_{String_: x.String()}}, nil
	case []string:
		return &pb.Value{Kind: &pb.Value_List{List: &pb.StringList{Values: x}}}, nil
	case map[string]string:
		return &pb.Value{Kind: &pb.Value_Map{Map: &pb.StringMap{Values: x}}}, nil
	}
	return nil, fmt.Errorf("config value of type %T cannot cross the plugin boundary", v)
}

// ValueFromPB converts a config value from the wire into a value that
// pipeline.Field.Parse accepts for the field's type. Nil is an absent value.
func ValueFromPB(m *pb.Value) any {
	switch k := m.GetKind().(type) {
	case *pb.Value_String_:
		return k.String_
	case *pb.Value_Int:
		return k.Int
	case *pb.Value_Bool:
		return k.Bool
	case *pb.Value_List:
		return append([]string{}, k.List.GetValues()...)
	case *pb.Value_Map:
		out := make(map[string]string, len(k.Map.GetValues()))
		for key, v := range k.Map.GetValues() {
			out[key] = v
		}
		return out
	}
	return nil
}

// SpecToPB converts a connector's spec for the wire.
func SpecToPB(s pipeline.Spec) (*pb.Spec, error) {
	m := &pb.Spec{Name: s.Name, Kind: string(s.Kind), Summary: s.Summary}
	for _, f := range s.Fields {
		pf := &pb.Field{Name: f.Name, Type: string(f.Type), Doc: f.Doc, Required: f.Required, Enum: f.Enum, Secret: f.Secret}
		if f.Default != nil {
			// Normalise to the field's Go type first: a default may be written
			// in the flow-file syntax ("1MiB").
			v, err := f.Parse(f.Default)
			if err != nil {
				return nil, fmt.Errorf("connector %q: default of field %q: %v", s.Name, f.Name, err)
			}
			if pf.Default, err = ValueToPB(v); err != nil {
				return nil, fmt.Errorf("connector %q: default of field %q: %v", s.Name, f.Name, err)
			}
		}
		m.Fields = append(m.Fields, pf)
	}
	return m, nil
}

// SpecFromPB converts a spec from the wire. The result is not validated;
// registering it does that.
func SpecFromPB(m *pb.Spec) pipeline.Spec {
	s := pipeline.Spec{Name: m.GetName(), Kind: pipeline.Kind(m.GetKind()), Summary: m.GetSummary()}
	for _, f := range m.GetFields() {
		s.Fields = append(s.Fields, pipeline.Field{
			Name: f.GetName(), Type: pipeline.FieldType(f.GetType()), Doc: f.GetDoc(),
			Default: ValueFromPB(f.GetDefault()), Required: f.GetRequired(), Enum: f.GetEnum(), Secret: f.GetSecret(),
		})
	}
	return s
}

// ConfigToPB converts parsed config values for the wire.
func ConfigToPB(values map[string]any) (map[string]*pb.Value, error) {
	out := make(map[string]*pb.Value, len(values))
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v, err := ValueToPB(values[name])
		if err != nil {
			return nil, fmt.Errorf("field %q: %v", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// ConfigFromPB converts config values from the wire into a raw config map.
func ConfigFromPB(m map[string]*pb.Value) map[string]any {
	out := make(map[string]any, len(m))
	for name, v := range m {
		out[name] = ValueFromPB(v)
	}
	return out
}
