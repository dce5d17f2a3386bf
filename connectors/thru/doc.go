// Package thru is mftflow's Thru MFT connector: a Client for the Connector
// API (TransportMgr: pickup, drop-off, file metadata, flow outcome) and the
// Content API (Files/1.0: preflight, simple upload, upload sessions).
//
// protocol.go holds every detail of the wire protocol that Thru's documents
// leave open, in one place shared with the simulator in testkit/thrusim.
//
// # Client
//
// Every Connector API request carries a fresh TransportMgrAuthHeader, retries
// included, because a site refuses a header it has seen before and one whose
// time is outside its window. Content API requests carry a Bearer token or an
// X-Api-Key header. Bodies stream both ways: a pickup's answer is handed to
// the caller unread, and uploads are written as multipart/form-data from the
// caller's reader without holding the file in memory.
//
// A call is retried (with a new header, after a backoff) on 5xx, 429,
// connection resets and timeouts, as long as its body can be sent again: JSON
// bodies always can, content bodies when the reader is an io.ReadSeeker.
// Failures are *CallError values naming the call, the file, the HTTP status
// and what to do; 401, 403, 409 and other 4xx answers are permanent
// (pipeline.IsPermanent), the rest may be retried. Secrets (keys, tokens,
// headers) never appear in errors or logs.
package thru
