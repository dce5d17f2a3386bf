// Package stages holds the built-in stages: match (filter by name and size),
// rename (name templates), attrs (attributes from templates), compress and
// decompress (gzip, zstd).
//
// Each stage has a Config struct and a constructor for Go programs
// (NewMatch, NewRename, NewAttrs, NewCompress, NewDecompress) and is
// registered under its flow-file name by Register.
//
// # Determinism
//
// The engine may run a stage again on the same file after a crash and keep
// only the bytes it had not stored yet, so every stage here gives the same
// output for the same input:
//
//   - rename and attrs fill {date} and {time} from the file's ModTime (in UTC), not
//     from the clock. Only a file without a ModTime falls back to the current
//     time, and its name may then differ across a restart that crosses a
//     second (or a day).
//   - compress writes gzip without a timestamp or a name in the header, and
//     zstd with a single-threaded encoder; both produce the same bytes however
//     the input arrives.
//
// # Readers and Close
//
// compress and decompress return readers that are also io.Closers. Close
// releases what the stage itself created (the compressing goroutine, the
// decoder); it does not close the reader the stage was given, which belongs
// to whoever passed it in. Closing before the end is allowed and is how a
// caller abandons a file half-way. A compressing reader that is never read
// starts no goroutine.
//
// Errors a stage returns for bad content (corrupt compressed data, a file
// over max_size) are pipeline.Permanent; errors from the reader a stage was
// given are passed on as they are, so a retryable source error stays
// retryable.
package stages
