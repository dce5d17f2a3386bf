package pipeline

import "github.com/bmatcuk/doublestar/v4"

// MatchAny reports whether one of the doublestar patterns (checked when
// the config was read) matches the slash-separated name: what include,
// exclude and ignore settings of connectors mean.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if doublestar.MatchUnvalidated(p, name) {
			return true
		}
	}
	return false
}

// Included reports whether name passes an include list (empty: every name)
// and an exclude list.
func Included(include, exclude []string, name string) bool {
	return (len(include) == 0 || MatchAny(include, name)) && !MatchAny(exclude, name)
}
