package bus

import (
	"encoding/json"

	"github.com/mftflow/mftflow/pipeline"
)

// The records' own JSON methods put their names and keys through
// pipeline.ExactString; the rest of each record is encoded as usual (the fields of
// the outer struct win over the embedded ones of the same JSON name).

type manifestJSON Manifest

func (m Manifest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		manifestJSON
		Key  pipeline.ExactString `json:"key"`
		Name pipeline.ExactString `json:"name"`
	}{manifestJSON(m), pipeline.ExactString(m.Key), pipeline.ExactString(m.Name)})
}

func (m *Manifest) UnmarshalJSON(b []byte) error {
	var v struct {
		manifestJSON
		Key  pipeline.ExactString `json:"key"`
		Name pipeline.ExactString `json:"name"`
	}
	v.manifestJSON, v.Key, v.Name = manifestJSON(*m), pipeline.ExactString(m.Key), pipeline.ExactString(m.Name)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Manifest(v.manifestJSON)
	m.Key, m.Name = string(v.Key), string(v.Name)
	return nil
}

type deliveryJSON Delivery

func (d Delivery) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		deliveryJSON
		Name pipeline.ExactString `json:"name"`
	}{deliveryJSON(d), pipeline.ExactString(d.Name)})
}

func (d *Delivery) UnmarshalJSON(b []byte) error {
	var v struct {
		deliveryJSON
		Name pipeline.ExactString `json:"name"`
	}
	v.deliveryJSON, v.Name = deliveryJSON(*d), pipeline.ExactString(d.Name)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Delivery(v.deliveryJSON)
	d.Name = string(v.Name)
	return nil
}

type memberJSON Member

func (m Member) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		memberJSON
		Key  pipeline.ExactString `json:"key"`
		Name pipeline.ExactString `json:"name"`
	}{memberJSON(m), pipeline.ExactString(m.Key), pipeline.ExactString(m.Name)})
}

func (m *Member) UnmarshalJSON(b []byte) error {
	var v struct {
		memberJSON
		Key  pipeline.ExactString `json:"key"`
		Name pipeline.ExactString `json:"name"`
	}
	v.memberJSON = memberJSON(*m)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Member(v.memberJSON)
	m.Key, m.Name = string(v.Key), string(v.Name)
	return nil
}
