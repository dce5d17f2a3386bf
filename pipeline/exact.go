package pipeline

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ExactString is a string that keeps its exact bytes through JSON (bus
// records, sinks' resume states). File
// names are bytes to most file systems, and JSON strings are UTF-8: a name
// that is not valid UTF-8 would be written with U+FFFD in place of each
// bad byte, and two names would become one. Valid UTF-8 is written as a
// plain JSON string, anything else as {"base64": "..."}.
type ExactString string

type base64Form struct {
	Base64 string `json:"base64"`
}

func (s ExactString) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(s)) {
		return json.Marshal(string(s))
	}
	return json.Marshal(base64Form{base64.StdEncoding.EncodeToString([]byte(s))})
}

func (s *ExactString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var f base64Form
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(f.Base64)
		if err != nil {
			return fmt.Errorf("name in base64: %w", err)
		}
		*s = ExactString(raw)
		return nil
	}
	var plain string
	if err := json.Unmarshal(b, &plain); err != nil {
		return err
	}
	*s = ExactString(plain)
	return nil
}
