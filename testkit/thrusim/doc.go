// Package thrusim simulates a Thru MFT site over real HTTP, for tests and
// for trying flows without a Thru account. It speaks everything the thru
// connector uses (see connectors/thru/protocol.go for the choices where
// Thru's documents are silent): the Connector API (pickup, File Code
// reservation, drop-off chunk zero, content chunks and EOF, file metadata,
// flow outcome) and the Content API (preflight, simple upload, upload
// sessions with PATCH, chunk PUT, GET, Commit and Abort).
//
// In a test, Start serves a site on 127.0.0.1 on a free port:
//
//	site := thrusim.Start(t, thrusim.Config{
//		SiteAccessKey: "access", AESKey: "000102030405060708090a0b0c0d0e0f",
//		PickupDelay:   thrusim.D(0),
//		Flows: []thrusim.FlowConfig{{Code: "TRN1", SecretKey: "secret",
//			Endpoints: []thrusim.EndpointConfig{{Code: "END1", ID: "6"}}}},
//		APIKeys: []string{"key"},
//	})
//	code, _ := site.AddPickup("TRN1", "a.csv", []byte("x"))
//	... site.URL, site.Deliveries(), site.Outcomes(), site.Calls() ...
//
// New returns the same site as an http.Handler, to serve any other way.
//
// # What it enforces
//
// Like a real site it decrypts TransportMgrAuthHeader and checks the site
// URL (when configured), the site access key and the flow secret key; the
// header's time must be within the timestamp window of the site's clock
// (default 30 s) and a header is refused the second time it is seen; the
// flow code in the URL must be the flow of the secret key. All of these
// answer 403 with an "Access denied: ..." text. The Content API wants a
// configured bearer token or X-Api-Key (401 otherwise) and a well-formed
// endpoint path naming a configured endpoint (409 otherwise); endpoint rules
// (name pattern, size limit) make the preflight answer accepted=false and an
// upload fail with 400.
//
// Drop-off needs a File Code the site issued (a reservation or a pickup),
// chunk zero before content chunks, well-formed part names, size= in every
// part's Content-Disposition matching the bytes sent, and chunks no larger
// than DropOffMaxChunkSize; chunks may come in any order and concurrently,
// and sending one again replaces it. EOF succeeds only when chunks 1..N are
// all there and their sizes add up to chunk zero's fileSize; errors answer
// 500 with the reason, as Thru does. Upload sessions take chunks up to
// MaxChunkSize (413 above) in any order; Commit succeeds only with metadata
// set and no gap in the chunk numbers. A repeated EOF or Commit of a
// delivered file succeeds without delivering it twice.
//
// Pickup hands out one file per call, 204 when the queue is empty or the
// flow's availability delay (default 10 s, like Thru's pickup cache; tests
// set 0) since the previous file has not passed, with Content-Disposition
// attachment; filename="<FileCode>-<name>" and Content-Length.
//
// What the site receives and hands out (chunks, delivered files, pickups)
// is kept in files of its spool directory (Config.SpoolDir; by default a
// temporary directory that Close removes), never in memory, so a file of
// 4 GiB costs disk and the same few buffers as a small one: chunks are
// streamed to disk as they arrive, a delivered file is its chunks read one
// after another, its sha256 computed at EOF or Commit by reading them.
//
// # Inspection and faults
//
// AddPickup (AddPickupFrom streams from a reader), Deliveries (with size and
// sha256; Delivery.Open reads the content from the spool), Outcomes, Calls (the call
// log: kind, chunk number, status, injected fault) and Session inspect the
// site from Go; with Config.Admin the same is served under /_admin/ (see
// serveAdmin).
// SetFaults fails a fraction of calls with 500 or 503, cuts the connection
// half-way through a body (the request's for uploads, the answer's for
// pickups), handles a call in full and then loses its answer (the
// connection is cut before the response: a chunk kept, a file delivered, a
// session committed, and the client none the wiser), or adds latency,
// optionally only for some kinds of calls; FailNth fails exactly the n-th
// call of a kind, LoseAnswerNth loses exactly its answer.
//
// # Standalone
//
// testkit/cmd/thrusim serves a site from a config file:
//
//	thrusim --listen 127.0.0.1:8480 --config site.yaml --pickup-dir ./pickup
//
// Flags:
//
//	--listen ADDR      address to listen on (default 127.0.0.1:8480)
//	--config FILE      YAML or JSON Config (keys as in Config's yaml tags)
//	--pickup-dir DIR   files put here are queued for pickup and removed from
//	                   DIR: files at the top go to the first flow, files in
//	                   DIR/<FlowCode>/ to that flow; scanned every second
//	--admin            serve /_admin/ (default true)
package thrusim
