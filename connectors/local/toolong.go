package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/mftflow/mftflow/pipeline"
)

// Paths the system refuses for their length (ENAMETOOLONG: on Linux a
// path has at most 4095 bytes) cannot be listed, looked at or opened. Such
// a file, or a directory that cannot be listed for it, is not skipped in
// silence: it is offered as an item whose Open fails with a permanent
// error saying why, so that the run counts it failed, "runner status
// --failed" lists it, and nothing goes missing unseen. It is offered once
// per process, like any file, and again by the next run.

// refusedItem is a file or directory the source cannot read. It implements
// pipeline.Item.
type refusedItem struct {
	file pipeline.File
	err  error
}

func (it *refusedItem) File() pipeline.File { return it.file }

// Open returns the reason the path cannot be read, a permanent error.
func (it *refusedItem) Open(ctx context.Context) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, it.err
}

// Ack does nothing: the file is left where it is, as any file that failed.
func (it *refusedItem) Ack(context.Context, pipeline.Outcome) error { return nil }

// refuseTooLong queues a refused item for rel when err says its path (abs)
// is too long, and reports whether it did. dir says rel is a directory
// that could not be listed.
func (s *Source) refuseTooLong(rel, abs string, err error, dir bool) bool {
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		return false
	}
	key := rel + "|path too long"
	if _, done := s.offered[key]; done {
		return true
	}
	for _, r := range s.refused {
		if r.file.Key == key {
			return true
		}
	}
	// Callers name the item's file when they report this error ("opening
	// NAME: ..."), so it does not repeat the name, which can be long.
	var why error
	if dir {
		why = fmt.Errorf("local source: a directory that cannot be listed: its path is %d bytes long, more than this system accepts (%v); "+
			"the files in it are not read: shorten the directory names, or move them nearer the source directory",
			len(abs), syscall.ENAMETOOLONG)
	} else {
		why = fmt.Errorf("local source: its path is %d bytes long, more than this system accepts (%v): "+
			"shorten the directory names above it, or move it nearer the source directory",
			len(abs), syscall.ENAMETOOLONG)
	}
	s.refused = append(s.refused, &refusedItem{
		file: pipeline.File{Key: key, Name: rel, Size: -1},
		err:  pipeline.Permanent(why),
	})
	return true
}

// popRefused returns the next refused item not offered yet, or nil.
func (s *Source) popRefused() pipeline.Item {
	for len(s.refused) > 0 {
		it := s.refused[0]
		s.refused[0] = nil
		s.refused = s.refused[1:]
		if _, done := s.offered[it.file.Key]; done {
			continue
		}
		s.offered[it.file.Key] = struct{}{}
		return it
	}
	return nil
}

var _ pipeline.Item = (*refusedItem)(nil)
