// Package local is mftflow's local file system connector: a source that
// reads files from a directory and a sink that writes files into one.
// Register adds both to a pipeline.Registry under the name "local"; NewSource
// and NewSink build them from Go.
//
//	source:
//	  local:
//	    path: /data/outbox
//	    include: ["**/*.csv"]
//	    after: move
//	    archive_dir: /data/sent
//	sinks:
//	  - local:
//	      path: /data/inbox
//	      name: "{date}/{name}"
//	      overwrite: rename
//
// # Source
//
// The source lists its directory (and, with recursive, every subdirectory)
// and offers each wanted file once it is ready. A file is wanted when its
// base name matches no ignore pattern, its slash-separated name relative to
// the directory matches an include pattern (if any) and no exclude pattern.
// A file is ready when its size and modification time have not changed for
// stable_for or, with trigger set, as soon as its trigger file exists: with
// trigger ".done", "a.csv" is ready once "a.csv.done" exists. Trigger files
// are never offered; they follow their file when it is deleted or moved.
// Ready files are offered oldest first.
//
// In watch mode the source asks the operating system for change
// notifications (fsnotify) so new files show up quickly, and lists the whole
// tree every rescan interval, so nothing depends on notifications arriving:
// a full event queue, a network file system or a watch limit only make it
// slower. When idle it does nothing but the periodic rescan. Without watch,
// Next returns io.EOF once the files present at the first Next are offered
// (those ready by then, with trigger; waiting for stability still applies).
//
// File.Key is "<name>|<size>|<mtime in unix nanoseconds>", so a file that
// changes is a new file. A Source never offers the same key twice, whatever
// the outcome: a file left in place after delivery (after: leave) or after
// a failure is not offered again by this process unless it changes. The
// engine recognises keys across restarts. The remembered keys take memory
// in proportion to the number of files offered during the process's life.
//
// Items open the file afresh on every Open and OpenRange (which the engine
// uses to read several chunks at once), and check that it is still the
// version that was offered: a file that vanished or changed gives a
// permanent error naming it, and the changed version is offered anew.
//
// Ack acts only on pipeline.Passed: after "delete" removes the file, after
// "move" moves it under archive_dir keeping its relative name (a taken name
// gets a suffix: a.csv, a-1.csv...; moves never replace a file, and across
// file systems they copy, flush, then remove). Before acting it checks the
// file is the version offered; a file that changed meanwhile is left in
// place and Ack returns an error saying so. Ack is idempotent: a file
// already deleted or moved is not an error.
//
// Symbolic links to regular files are offered under the link's name and
// read through the link; delete and move act on the link itself, never on
// the file it points to. Links to directories are not followed, so a tree
// cannot loop; other links, devices, pipes and sockets are skipped.
//
// # Sink
//
// The sink writes each file into a hidden temporary file next to its target,
// ".mftflow-<file id>-<hash of target>.tmp", part by part with WriteAt, so
// parts can be written concurrently and in any order. Nothing appears under
// the target name until Commit, which cuts the file to its final size and
// publishes it atomically: with overwrite "replace" by renaming it over the
// target; with "fail", "skip" and "rename" by hard-linking it to the target
// name, which cannot replace a file that appeared meanwhile, then removing
// the temporary name. Abort removes the temporary file. With fsync, each part,
// the final file and every directory from its own up to the sink's are
// flushed before the call returns.
//
// Without fsync, a committed file may sit in the page cache: a killed runner
// loses nothing, a power cut may. The sink implements pipeline.Flusher, so
// the engine asks it to flush before a source removes a file (after: delete
// or move): on Linux one syncfs(2) of the sink's file system, shared by every
// file committed before it began (a Flush waits for a sync that started after
// it was called, so concurrent deliveries share one), elsewhere an fsync of
// each file committed since the last Flush and of its directories. With
// fsync, Flush returns at once.
//
// Upload.State is a small JSON document naming the temporary file and the
// target, so after a crash Open resumes writing the same temporary file under
// the same name even if the name template contains {date}. If the temporary
// file has vanished, Open starts a new one and Commit publishes only once
// every byte has been written again, rather than publish a file with holes.
// A Commit repeated after a crash that happened once the file was published
// succeeds when the target holds the final size (and sha256, when known).
//
// Hostile names from a source or a template ("../x", "/etc/passwd", names
// with NUL bytes or backslashes) are refused with pipeline.ErrBadName.
// Permission errors, existing targets and bad names are permanent
// (pipeline.IsPermanent); other I/O errors may be retried.
package local
