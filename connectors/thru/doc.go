// Package thru is mftflow's Thru MFT connector: a Client for Thru's
// Connector API (TransportMgr: pickup, drop-off, file metadata, flow outcome)
// and Content API (Files/1.0: preflight, simple upload, upload sessions), a
// source that picks up files from a flow, and a sink that delivers files by
// drop-off or through the Content API. Register adds both under the name
// "thru".
//
//	source:
//	  thru:
//	    base_url: https://example.thruinc.com
//	    flow_code: TRN000123
//	    site_access_key: ${THRU_SITE_ACCESS_KEY}
//	    flow_secret_key: ${THRU_FLOW_SECRET_KEY}
//	    aes_key: ${THRU_AES_KEY}
//	    poll_interval: 1m
//	sinks:
//	  - thru:                          # a response to each picked-up file
//	      mode: dropoff
//	      base_url: https://example.thruinc.com
//	      flow_code: TRN000123
//	      site_access_key: ${THRU_SITE_ACCESS_KEY}
//	      flow_secret_key: ${THRU_FLOW_SECRET_KEY}
//	      aes_key: ${THRU_AES_KEY}
//	  - thru:
//	      mode: content
//	      base_url: https://example.thruinc.com
//	      endpoint_path: "flow:FLCKGR/endpoint:END9GSR/flowendpoint:6"
//	      api_key: ${THRU_API_KEY}
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
// the caller unread, and uploads are written as multipart/form-data straight
// from the caller's reader, with a Content-Length computed up front, without
// holding the file in memory.
//
// A call is retried (with a new header, after a jittered backoff) on 5xx,
// 429, connection resets and timeouts, as long as its body can be sent again:
// JSON bodies always can, content bodies when the reader is an io.ReaderAt
// and an io.Seeker, such as a bytes.Reader, a file or the pipeline.Slices the
// engine's parts come as (otherwise the caller retries, rewriting the part).
// A call whose answer is lost after the site did its work is safe to send
// again for every call the sinks make but one: the site keeps the last copy
// of a drop-off chunk, chunk zero or session chunk, and answers a repeated
// EOF or Commit with 200 without a second file. The exception is the simple
// upload, where each upload the site takes is a file of its own and nothing
// can ask whether a lost one arrived: once its whole request went out, a
// lost answer is a permanent error wrapping ErrAnswerLost, and the file is
// not sent again (an upload session, simple_threshold: 0, has no such
// doubt). A lost reservation or session creation leaves an unused File
// Code or an empty session behind, never a file.
//
// Failures are *CallError values naming the call, the file, the HTTP status
// and what to do; they wrap ErrAccessDenied (401, 403: wrong keys, clock
// skew, flow code mismatch), ErrInvalidEndpointPath (409) or ErrNotFound
// (404). Every 4xx but 408 and 429 is permanent (pipeline.IsPermanent), the
// rest may be retried. Secrets (keys, tokens, headers) never appear in errors
// or logs; text from the site is scrubbed of them too.
//
// # Source
//
// The source polls FlowPickup every poll_interval (varied by up to a fifth)
// while the site answers 204, and takes files one by one while it has some.
// Each pickup is written to the spool directory before it is offered,
// because Thru hands a file out only once: the item reads from there (ranges
// too, for parallel reads), and files left there by a stopped runner are
// offered again with the same Key ("thru:<FileCode>"). The File Code prefix
// is stripped from the name and kept as attribute thru.file_code. Ack
// reports the flow outcome (1 passed, 2 failed, 3 mixed; a file a stage
// skipped counts as passed) with the run id as flowInstanceCode, the message
// as ActivityMessage and the failed sinks' errors as ActivityDetail, then
// removes the spooled file. Wrong keys make Next fail instead of polling on.
// A pickup whose download is cut cannot be asked for again (the site counts
// it picked up): it is offered as a file that fails to open, saying so, so
// that it is counted failed and its outcome (2) tells the site.
//
// # Outcome attributes
//
// A flow fills the rest of a file's FlowOutcome by setting attributes in
// its stages (the attrs stage, or a Go stage); Ack reads them from the
// attributes the stages left (pipeline.Outcome.Attrs):
//
//	thru.batch_total   batchTotalRecordCount: a whole number, 0 or more
//	thru.batch_failed  batchFailedRecordCount: a whole number, at most thru.batch_total
//	thru.recipients    SelectiveDropOffRecipients: codes separated by commas
//
// For example:
//
//	stages:
//	  - attrs:
//	      set:
//	        thru.batch_total: "{attr.records}"
//	        thru.batch_failed: "0"
//	        thru.recipients: "{attr.thru.sender.participant_code},ORG2"
//
// An attribute left unset is left out of the outcome (0, no recipients). A
// wrong one (not a whole number, more failed records than the total, an
// empty recipient, which would otherwise widen a private delivery to every
// recipient) fails the file before any sink gets it (the item is a
// pipeline.AttrChecker): its outcome is 2, with a message naming the file,
// the attribute, what is wrong and what to correct.
//
// # Sink
//
// See Sink for the two modes. In short: dropoff reuses the file's
// thru.file_code or reserves a File Code, sends chunk zero, one chunk per
// part concurrently, and EOF at Commit; content checks the endpoint path,
// preflights, then makes an upload session (or, below simple_threshold,
// off by default, a simple upload), resumable with GET and aborted with
// Abort status 0 (error) or 1 (cancelled).
package thru
