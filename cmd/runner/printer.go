package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// printer writes a command's report and keeps the first write error, as
// bufio.Writer does: a report that did not arrive (a full disk, a closed
// pipe) then fails the command instead of ending it with success, without
// a check after every line. After an error it writes nothing more.
type printer struct {
	w   io.Writer
	err error
}

// table returns a printer of the rows of a table, aligned in columns
// (two spaces apart) by flush.
func table(w io.Writer) *printer {
	return &printer{w: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

func (p *printer) printf(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

func (p *printer) println(a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintln(p.w, a...)
	}
}

// flush writes out the rows of a table and returns the first error.
func (p *printer) flush() error {
	if tw, ok := p.w.(*tabwriter.Writer); ok && p.err == nil {
		p.err = tw.Flush()
	}
	return p.err
}

// warnf writes a message for the user to stderr, where a failed write has
// nowhere left to be reported.
func warnf(w io.Writer, format string, a ...any) {
	_, _ = fmt.Fprintf(w, format, a...)
}
