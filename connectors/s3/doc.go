// Package s3 is mftflow's S3 connector: a source that reads objects below a
// prefix of a bucket and a sink that writes files as objects, for AWS S3 and
// any S3-compatible server (MinIO, Ceph, ...), built on aws-sdk-go-v2.
// Register adds both to a pipeline.Registry under the name "s3"; NewSource
// and NewSink build them from Go.
//
//	source:
//	  s3:
//	    bucket: incoming
//	    prefix: partner-a
//	    include: ["**/*.csv"]
//	    after: move
//	    archive_prefix: archive/partner-a
//	    endpoint: https://minio.example.com   # omit for AWS
//	    path_style: true
//	    access_key_id: ${S3_KEY}
//	    secret_access_key: ${S3_SECRET}
//	sinks:
//	  - s3:
//	      bucket: outgoing
//	      prefix: partner-b                   # a plain prefix; templates go in key
//	      key: "{date}/{name}"
//	      credentials: default                # the AWS SDK's default chain
//	      region: eu-west-1
//	      sse: aws:kms
//	      kms_key_id: alias/mft
//
// # Credentials and addressing
//
// With credentials "static" (the default) the client uses access_key_id and
// secret_access_key (flow files fill them from ${ENV}) and reads nothing
// from the environment or shared config files: what the flow says is what
// is used. With "default" it uses the SDK's default chain, environment and
// files included. endpoint and path_style reach S3-compatible servers.
// The SDK retries each request up to 3 times; the engine retries failed
// deliveries on top of that.
//
// # Sink
//
// Every non-empty file is written as a multipart upload: CreateMultipartUpload
// at Open, one UploadPart per part (several at once: the plan's concurrency,
// or the flow's parallelism for the sink), CompleteMultipartUpload at Commit.
// Nothing is visible under the key before Commit, Abort (or a permanent
// failure) aborts the upload so S3 drops its parts, and every part is
// durable at S3 when WritePart returns, which is what the engine assumes when
// it records the part as written and removes its chunks from the bus. A
// single PutObject at Commit would have to keep the file in memory between
// WritePart and Commit and lose it if the runner died in between, after the
// engine had dropped its chunks; a PutObject in WritePart would make the
// object visible before Commit. Small files therefore go up as one part of a
// multipart upload (a multipart upload's only part may be smaller than 5 MiB);
// empty files, which have nothing to lose, are one PutObject at Commit.
//
// Part sizes: part_size (default 8 MiB), never below S3's 5 MiB minimum. When
// the size is known at Open the part size is raised, to whole MiB, so that the
// file needs at most 10,000 parts (5 TiB, S3's largest object, gets 525 MiB
// parts). When it is not (after a compressing stage) parts are
// unknown_size_part_size (default 64 MiB), so such a file may be at most
// 10,000 × that (640 GiB); a bigger one fails at part 10,001 with an error
// saying to raise it. The engine rounds part sizes up to whole bus chunks.
// Each part's checksum goes in a header, so the part must be whole before
// its request starts, and the SDK must be able to send it again. The engine
// hands a part over as its bus chunks (*net.Buffers), which are sent as they
// are, without a copy; another caller's part is copied, in memory up to
// 16 MiB, in a temporary file above, so memory stays at most 16 MiB × parts
// in flight.
//
// Parts are sent with UNSIGNED-PAYLOAD rather than a signed sha256 of the
// body, over HTTPS and plain HTTP alike: the part's CRC32C (or MD5), in a
// signed header, checks the bytes, and neither the runner nor the server
// hashes every byte once more for the signature. The request itself stays
// signed. Over plain HTTP this trades the signature's protection of the
// body against deliberate tampering for the checksum's against corruption;
// such a link already shows the data to anyone on the path, so use HTTPS
// where that matters.
//
// Integrity: every part carries a CRC32C (x-amz-checksum-crc32c, the SDK's
// flexible checksums) that the server verifies, or a Content-MD5 with
// checksum "md5" for servers without them. With CRC32C the upload asks for a
// whole-object checksum (checksum type FULL_OBJECT): CompleteMultipartUpload
// sends the object's CRC32C, combined from the parts', the server checks it
// against its own, and the object keeps it (HeadObject with checksum mode
// ENABLED shows it). A server that does not answer CreateMultipartUpload (or
// ListParts, when resuming) with that type gets the per-part checksums
// only. After CompleteMultipartUpload a HeadObject checks the object's size.
// The whole file's sha256 goes into the object's metadata as
// x-amz-meta-sha256 (MetaSHA256):
//
//   - Files of known size up to small_file_size (default 8 MiB): the sink is
//     pipeline.ManifestFirst for them, so the engine opens them once they are
//     wholly on the bus, with their sha256, which then goes into
//     CreateMultipartUpload's metadata. Waiting costs little at that size and
//     saves a request per file.
//   - Bigger files (and files of unknown size) would make the engine hold the
//     whole file on the bus before the upload could start. Instead, after
//     CompleteMultipartUpload, the object is copied onto itself server-side
//     (CopyObject with the REPLACE metadata directive, keeping content type,
//     storage class, encryption and tags), which moves no data through the
//     runner. The object is briefly visible without the sha256 in between,
//     and on a versioned bucket the copy adds a version. MinIO makes such a
//     copy a metadata update only when the object has a whole-object
//     checksum, as CRC32C uploads do; otherwise (checksum "md5") it rewrites
//     the data, as AWS does, which takes time in proportion to the size but
//     no runner CPU or bandwidth.
//   - CopyObject cannot copy objects above 5 GiB in one call, nor objects in
//     the GLACIER and DEEP_ARCHIVE storage classes; those get the sha256 as
//     the object tag "sha256" instead (PutObjectTagging, merged with the
//     configured tags).
//
// Resume: Upload.State is JSON {"key","upload_id","part_size"}. Open with it
// continues the same upload under the same key, even if the key template
// holds {date}: ListParts says which parts S3 already holds, and the first
// WritePart of such a part is skipped when the part's size and CRC32C (or
// MD5, from the ETag) match the bytes given, so a part is never trusted on
// size alone; a later write of the same part replaces it as usual. (The
// engine itself skips parts it recorded as done.) A Commit repeated after a
// crash that followed CompleteMultipartUpload finds the upload gone and
// succeeds if the object has the file's size and sha256; an object without
// the sha256 metadata (the crash came before it was written) is read and
// hashed first, and one whose content is not the file's (another writer
// replaced it) fails the delivery instead of getting the file's sha256 (an
// object in an archive storage class, which cannot be read before a
// restore, is taken on its size).
//
// Overwrite: "replace" (default); "fail" fails the file with
// pipeline.ErrExists if the key exists, checked at Open (before any data is
// sent), again just before CompleteMultipartUpload, and made certain by the
// write that creates the object: CompleteMultipartUpload (PutObject for an
// empty file) carries If-None-Match: *, so of two deliveries racing for one
// key the server lets only the first create it and refuses the other (412),
// whose upload is then aborted. (AWS and MinIO honour If-None-Match; on a
// server that ignores it a racing writer can still slip in after the
// check.) A Commit repeated after one whose answer was lost finds its own
// upload gone (ListParts) and succeeds;
// "skip" skips the file (pipeline.ErrSkip, counted as delivered) if the
// object has the same size and x-amz-meta-sha256 (decided at Open for small
// files, at Commit otherwise), and replaces it otherwise (objects whose
// sha256 is a tag, see above, are always replaced). Both look at the
// object with HeadObject, which needs s3:GetObject and, for a missing object
// to answer 404 rather than 403 on AWS, s3:ListBucket.
//
// Keys: prefix + "/" + the expanded key template (pipeline.ExpandName). A
// template that expands to an empty key, an absolute one, one with "..",
// NUL bytes or backslashes, or a key longer than 1024 bytes fails the file
// with pipeline.ErrBadName, naming the bucket, the template and the file.
//
// Permissions: the sink needs s3:PutObject, s3:GetObject (HeadObject checks
// each object's size, and the sha256 copy reads it), s3:AbortMultipartUpload
// and s3:ListMultipartUploadParts (resume); with overwrite fail or skip also
// s3:ListBucket, without which a missing object answers 403 rather than 404.
// Tags need s3:PutObjectTagging on AWS.
//
// # Source
//
// The source lists the prefix (ListObjectsV2) and offers every object whose
// name, its key relative to the prefix, matches an include glob (if any) and
// no exclude glob (doublestar syntax); keys ending in "/" (folder markers)
// are never offered. Objects of one listing are offered oldest first.
// File.Key is "<key>|<etag>", so a replaced object is a new file; the
// attributes s3.bucket, s3.key and s3.etag are set. In watch mode the prefix
// is listed again every poll_interval; without it Next returns io.EOF once
// the first listing is offered. A Source never offers the same key and ETag
// twice, whatever the outcome; the remembered keys take memory in proportion
// to the number of objects offered in the process's life.
//
// Items read with GetObject and, for the engine's parallel reads, range
// GETs (pipeline.RangeOpener), always with If-Match on the listed ETag: an
// object replaced meanwhile gives a permanent error, never a mix of versions.
// Ack acts only on pipeline.Passed: after "delete" deletes the object, "move"
// copies it below archive_prefix (with x-amz-copy-source-if-match) then
// deletes it, "tag" adds after_tags; "leave" does nothing. Ack first checks
// that the object still has the listed ETag and leaves a replaced object
// alone, with an error; it is idempotent (an object already gone is fine).
//
// # Errors
//
// Failed requests are *Error values naming the call, bucket, key, endpoint,
// status and S3 code, with a hint saying what to do. Wrong credentials
// (InvalidAccessKeyId, SignatureDoesNotMatch), a missing bucket
// (NoSuchBucket), denied access (AccessDenied, any 403), a missing object
// and other 4xx refusals are permanent (pipeline.IsPermanent): retrying
// cannot fix them. 5xx answers, throttling (SlowDown, 429), request
// timeouts and endpoints that do not answer at all are retried. Denied
// access names the permission the call needs:
//
//	s3 ListObjectsV2 s3://in/partner-a/ at https://minio.example.com: 403 AccessDenied:
//	access denied: grant these credentials s3:ListBucket on bucket "in" (or check the credentials)
//
// The source needs s3:ListBucket and s3:GetObject and, for its after
// action, s3:DeleteObject (delete, move), s3:PutObject (move), or
// s3:GetObjectTagging and s3:PutObjectTagging (tag).
//
// # Tests
//
// The tests run against a real MinIO server (package testkit/minio), built
// by scripts/minio.sh into bin/minio; without it they are skipped with a
// message saying so.
package s3
