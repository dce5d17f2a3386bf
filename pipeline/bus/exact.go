package bus

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// exactString is a string that keeps its exact bytes through JSON. File
// names are bytes to most file systems, and JSON strings are UTF-8: a name
// that is not valid UTF-8 would be written with U+FFFD in place of each
// bad byte, and two names would become one. Valid UTF-8 is written as a
// plain JSON string, anything else as {"base64": "..."}.
type exactString string

type base64Form struct {
	Base64 string `json:"base64"`
}

func (s exactString) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(s)) {
		return json.Marshal(string(s))
	}
	return json.Marshal(base64Form{base64.StdEncoding.EncodeToString([]byte(s))})
}

func (s *exactString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var f base64Form
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(f.Base64)
		if err != nil {
			return fmt.Errorf("name in base64: %w", err)
		}
		*s = exactString(raw)
		return nil
	}
	var plain string
	if err := json.Unmarshal(b, &plain); err != nil {
		return err
	}
	*s = exactString(plain)
	return nil
}

// The records' own JSON methods put their names and keys through
// exactString; the rest of each record is encoded as usual (the fields of
// the outer struct win over the embedded ones of the same JSON name).

type manifestJSON Manifest

func (m Manifest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		manifestJSON
		Key  exactString `json:"key"`
		Name exactString `json:"name"`
	}{manifestJSON(m), exactString(m.Key), exactString(m.Name)})
}

func (m *Manifest) UnmarshalJSON(b []byte) error {
	var v struct {
		manifestJSON
		Key  exactString `json:"key"`
		Name exactString `json:"name"`
	}
	v.manifestJSON, v.Key, v.Name = manifestJSON(*m), exactString(m.Key), exactString(m.Name)
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
		Name exactString `json:"name"`
	}{deliveryJSON(d), exactString(d.Name)})
}

func (d *Delivery) UnmarshalJSON(b []byte) error {
	var v struct {
		deliveryJSON
		Name exactString `json:"name"`
	}
	v.deliveryJSON, v.Name = deliveryJSON(*d), exactString(d.Name)
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
		Key  exactString `json:"key"`
		Name exactString `json:"name"`
	}{memberJSON(m), exactString(m.Key), exactString(m.Name)})
}

func (m *Member) UnmarshalJSON(b []byte) error {
	var v struct {
		memberJSON
		Key  exactString `json:"key"`
		Name exactString `json:"name"`
	}
	v.memberJSON = memberJSON(*m)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Member(v.memberJSON)
	m.Key, m.Name = string(v.Key), string(v.Name)
	return nil
}
