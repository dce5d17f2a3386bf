package flowfile

import "testing"

func TestExpand(t *testing.T) {
	lookup := env(map[string]string{"HOME": "/home/me", "EMPTY": "", "REF": "${HOME}"})
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOME}/in", want: "/home/me/in"},
		{in: "a${HOME}b${HOME}c", want: "a/home/meb/home/mec"},
		{in: "${MISSING:./in}", want: "./in"},
		{in: "${MISSING:}", want: ""},
		{in: "${MISSING:a:b}", want: "a:b"},
		{in: "${HOME:/default}", want: "/home/me"},
		{in: "${EMPTY:default}", want: ""},
		{in: "${REF}", want: "${HOME}"}, // not expanded twice
		{in: "$$HOME", want: "$HOME"},
		{in: "$${HOME}", want: "${HOME}"},
		{in: "$$$${HOME}", want: "$${HOME}"},
		{in: "$$${HOME}", want: "$/home/me"},
		{in: "price: 5$", want: "price: 5$"},
		{in: "$HOME $ $a", want: "$HOME $ $a"},
		{in: "${MISSING}", err: `environment variable "MISSING" is not set (use ${MISSING:default} for a default)`},
		{in: "${HOME", err: `unclosed "${": end the variable with "}" or write "$${" for a literal "${"`},
		{in: "x${", err: `unclosed "${": end the variable with "}" or write "$${" for a literal "${"`},
		{in: "${}", err: `invalid variable name in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`},
		{in: "${:x}", err: `invalid variable name in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`},
		{in: "${A-B}", err: `invalid variable name "A-B" in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`},
		{in: "${9A}", err: `invalid variable name "9A" in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`},
		{in: "${_A9}", err: `environment variable "_A9" is not set (use ${_A9:default} for a default)`},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup, false)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandSecretHidesName(t *testing.T) {
	_, err := expand("pa${ss word}", env(nil), true)
	want := `invalid variable name in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
