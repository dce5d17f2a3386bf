// Package sftp is the SFTP source and sink: files read from, or written
// to, a directory on an SFTP server over SSH (github.com/pkg/sftp and
// golang.org/x/crypto/ssh). Register adds both to a registry under the name
// "sftp". It is an ordinary Go connector, tested in-process against a real
// OpenSSH server (testkit/sshd), so that a plugin program can serve it from
// a separate process unchanged.
//
// # Connection
//
// Each Source and Sink keeps one SSH connection, dialled on first use and
// shared by all its calls (SFTP multiplexes requests). A call that fails
// because the connection dropped returns a retryable error, and the next
// call dials again, so a dead connection never wedges the connector. Logins
// use a private key, a password or both. The server's host key must be in
// the known_hosts file; insecure_ignore_host_key turns that check off, must
// be set explicitly, and logs a warning. Every keepalive interval an open
// connection sends keepalive@openssh.com and a cheap SFTP request (Thru's
// servers close sessions idle for 15 minutes and count only SFTP commands);
// a server that does not answer within connect_timeout has its connection
// closed, which fails the calls waiting on it instead of leaving them hanging.
//
// Errors users meet say what to do: a refused login names the user and
// the methods tried; an unknown host key gives its fingerprint and the
// ssh-keyscan command; a changed host key is reported as a possible
// interception; "connection refused" asks whether the server runs; a
// missing directory, a refused permission or a wrong passphrase are
// permanent errors naming the path.
//
// # Sink
//
// Each file is written under a temporary name (temp_name, ".{base}.{id}.tmp"
// by default) in its target's directory, parts concurrently with WriteAt at
// their offsets, each part through its own file handle. The resume state is
// the temporary file's path: after a crash, Open with it keeps what was
// written. Commit cuts the temporary file to the final size, renames it
// (posix-rename@openssh.com for overwrite "replace"; a plain SFTP rename,
// which never replaces a file, for "skip" and "fail"), checks the size the
// server reports and writes an optional empty trigger file. Thru starts
// processing an upload only on that rename. Commit is idempotent: a target
// that already holds the file (the same size, and the same sha256 for files
// up to 64 MiB) is taken as an earlier Commit's work. Abort removes the
// temporary file. The directory itself must exist; subdirectories that names
// need are created.
//
// # Source
//
// The source lists the directory (and, with recursive, its subdirectories)
// every poll_interval. A file is offered once two listings at least
// stable_for apart show the same size and modification time, or at once
// when it is older than min_age. Include, exclude and ignore globs work as
// in the local source. Each version of a file (name, size, modification
// time) is offered once per Source; a file offered but never acked is
// offered again by a new Source. Items read ranges with ReadAt, so the engine
// reads large files in parallel. After delivery (Outcome Passed only) a file
// is deleted, moved to archive_dir (with a suffix when the name is taken) or
// left, and its companions (pipeline.Companions) with it; a file that
// changed since it was offered is left in place. Items also open the files
// beside them by name (pipeline.SiblingOpener: a checksum file).
package sftp
