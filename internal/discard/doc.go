// Package discard drops an error on purpose, by name, where nothing
// depends on it: the Close of something only read, or of something thrown
// away because another error already decided the outcome. A Close that can
// lose data (a file or writer that was written to) is checked instead.
//
// It lives under internal/ rather than in pipeline/ because it is no part of
// the connector contract; connectors, stages, plugins, the runner and the
// test kit share it. errcheck (make lint) accepts these calls and flags a
// bare unchecked Close.
package discard
