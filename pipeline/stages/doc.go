// Package stages holds the built-in stages: match (filter by name and size),
// rename (name templates), attrs (attributes from templates), compress and
// decompress (gzip, zstd), pgp_encrypt and pgp_decrypt (OpenPGP), verify
// (a file against its checksum file).
//
// Each stage has a Config struct and a constructor for Go programs
// (NewMatch, NewRename, NewAttrs, NewCompress, NewDecompress, NewPGPEncrypt,
// NewPGPDecrypt, NewVerify) and is registered under its flow-file name by Register.
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
// pgp_encrypt is the exception: OpenPGP encrypts each file with a fresh
// random session key, and the recipients' copies of it are encrypted with
// randomness Go's crypto/rsa no longer lets a caller choose (since Go 1.26),
// so the same file encrypts to other bytes each time. The engine checks, on
// resuming a read through stages, that the bytes before its checkpoint hash
// as before, and reads the file afresh when they do not, so an encryption
// is never joined to another.
//
// # Readers and Close
//
// compress, decompress, pgp_encrypt and pgp_decrypt return readers that are
// also io.Closers. Close
// releases what the stage itself created (the compressing goroutine, the
// decoder); it does not close the reader the stage was given, which belongs
// to whoever passed it in. Closing before the end is allowed and is how a
// caller abandons a file half-way. A compressing reader that is never read
// starts no goroutine.
//
// Errors a stage returns for bad content (corrupt compressed data, a file
// over max_size, a file pgp_decrypt cannot decrypt or verify, a checksum
// that does not match) are
// pipeline.Permanent; errors from the reader a stage was given are passed on
// as they are, so a retryable source error stays retryable.
//
// # OpenPGP
//
// pgp_encrypt and pgp_decrypt use github.com/ProtonMail/go-crypto's openpgp
// package and write what GnuPG 2.2 reads: SEIPD version 1 (with MDC), AES-256,
// SHA-256 signatures, ZIP or ZLIB compression. Keys are RSA or ECC
// (ed25519 with a cv25519 subkey, as gpg makes them).
//
// Public keys (recipients, signers) come from key files or from armored key
// text in a flow value ("${PARTNER_KEY}"): an item that starts with
// "-----BEGIN PGP " is text, anything else a path. Private keys come from
// files only, so they stay out of flow files and variables; passphrases come
// from Secret fields and appear in no error. Keys are read, and private keys
// unlocked, when the stage is built, so "runner validate" reports a missing
// file, a public key given for a private one or a wrong passphrase at the
// field, with its position.
//
// pgp_decrypt's key ring is split by role: the private keys decrypt, the
// signers alone are trusted to sign, so a file signed with one of the private
// keys' own signing keys is not trusted for that. Whether a file can be
// decrypted and who signed it are known from its first packets, and an
// unknown key or signer fails the file before any content is returned. The
// signature and the integrity check (MDC) cover the whole content and are
// checked at its end: the reader returns the content as it goes and then,
// in place of io.EOF, the failure. The engine publishes the last chunk only
// once the stage's reader has ended cleanly, so a file that fails there is
// failed, and no sink commits it.
//
// # Checksum files
//
// verify reads a file's checksum file from the source itself
// (pipeline.SiblingOpener on the item the engine puts in the stage's
// context, pipeline.ItemOf) rather than waiting for it to pass through the
// flow: a file waiting in a stage for a later file of the same flow would
// hold a reading slot, and enough of them would wait for files that can
// never be read. It fails at the end of the content as pgp_decrypt does,
// and lists the checksum file as the file's companion
// (pipeline.AttrCompanions) so the source's after action takes both.
package stages
