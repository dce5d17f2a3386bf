// Package ftps is the FTPS source and sink: files read from, or written
// to, a directory on an FTP server over TLS (github.com/jlaffaye/ftp).
// Register adds both to a registry under the name "ftps". It is served by
// the shipped plugin plugins/ftps and tested in-process and over RPC
// against a real vsftpd (testkit/ftpd).
//
// # Connection
//
// TLS is explicit (AUTH TLS, port 21) or implicit (port 990); logins and
// data connections always use it, and the server's certificate is checked
// against ca_file or the system's roots for host (or server_name);
// disable_tls13 keeps to TLS 1.2 for servers such as vsftpd 3.0, whose TLS
// 1.3 breaks uploads (an error that looks like it says so). Data
// connections are passive (EPSV, or PASV with disable_epsv) and resume the
// control connection's TLS session, which servers such as vsftpd require:
// each connection has a session cache of its own. FTP carries one transfer
// per connection, so Source and Sink keep a pool of up to max_connections
// logged-in connections; one idle for a while is checked with NOOP before
// reuse, and one that failed is closed and dialled again on the next try.
// Every read and write on a connection has a deadline (io_timeout), and a
// cancelled call closes its connections, so a silent server never hangs a
// flow.
//
// Errors users meet say what to do: a refused login names the user and the
// server's answer; an untrusted certificate asks for ca_file; a certificate
// for another name asks for server_name; "connection refused" asks whether
// the server runs; a directory that cannot be entered and a refused upload
// are permanent and quote the server. Replies 4xx and lost connections are
// retried.
//
// # Sink
//
// Each file goes up under a temporary name (temp_name) in its target's
// directory. Parts come in order (pipeline.PartPlan.InOrder): the first
// starts the file with STOR, each next one is appended (APPE), and a part
// that was cut short is written again at its offset with REST + STOR where
// the server allows it. After each part the server's SIZE must cover it.
// The resume state is the temporary file's path: after a crash, the engine
// continues from the first part not recorded, so only that part is sent
// again. Commit checks the size, renames the file (RNFR/RNTO; with
// overwrite "skip" or "fail" the target is looked for just before, as FTP
// has no rename that refuses to replace), checks the size again and writes
// an optional empty trigger file. It is idempotent: a target that already
// holds the file (the same size, and the same sha256 for files up to 64
// MiB) is taken as an earlier Commit's work. Abort deletes the temporary
// file.
//
// # Source
//
// The source changes into the directory (and, with recursive, its
// subdirectories) and lists it every poll_interval; a pipeline.Poller
// decides when a file is stable and offers each version once. A listing's
// times may be to the minute only (LIST without MLSD), so an offered file
// gets its time from MDTM where the server has it, and Open and Ack check
// size and that time. Items read ranges with REST (or by skipping bytes
// where REST is refused), each on a connection of its own, so the engine
// reads large files in parallel, and open the files beside them by name
// (pipeline.SiblingOpener: a checksum file). After delivery a file is
// deleted, moved to archive_dir (with a suffix when the name is taken) or
// left, and its companions (pipeline.Companions) with it.
package ftps
