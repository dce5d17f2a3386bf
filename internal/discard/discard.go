package discard

import "io"

// Close closes c and drops its error. Use it as defer discard.Close(f).
func Close(c io.Closer) { _ = c.Close() }
