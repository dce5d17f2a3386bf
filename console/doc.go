// Package console serves the operator console: a browser view of the flows
// on a NATS server, beside a runner's operations endpoints (package ops) or
// on its own ("runner console").
//
// Under its prefix (default /console) it shows:
//
//	/                         every flow: files, in progress, done, failed
//	                          deliveries, throughput per sink, runners at work
//	/flows/F                  a flow: counts per sink, runners, live transfers
//	                          with each file's progress per sink and its rate,
//	                          arrival SLAs, notification targets
//	/flows/F/failures         failed deliveries with their reason, and a Replay
//	                          button for operators; files that failed before
//	                          delivery
//	/flows/F/files/ID         a file: its record, its deliveries as they go,
//	                          its timeline from the flow's audit trail
//	/search                   files by name (part, glob) or id, flow, status and
//	                          arrival time
//	/events?view=V&flow=F     the live parts of a page, as server-sent events
//	POST /flows/F/replay      replay a failed delivery (operators; CSRF token)
//	/login, POST /logout
//
// # Why server-rendered pages, htmx and server-sent events
//
// Pages are html/template, rendered from memory on the server, and work
// without JavaScript (forms post, links link). htmx 2 (one 50 KB file) and
// its SSE extension (3 KB) add the live parts: a page opens one event
// stream, and each event carries an HTML fragment rendered by the same
// template as the page, which htmx swaps in by the event's name. No build
// step, no node_modules, no JSON API to keep in step with a client: the
// two files are vendored unchanged from their npm packages, with their
// version, license and digest in assets/README.md, and embedded in the
// binary with the templates and style sheet. Nothing is fetched from
// elsewhere at build or run time, and the Content-Security-Policy allows
// scripts, styles and connections from the console's own origin only
// (htmx's eval and inline styles are turned off in its config).
// Server-sent events rather than websockets: the updates go one way, they
// are plain HTTP through any proxy, and net/http streams them with a
// Flusher; the browser reconnects by itself.
//
// # Where the live state comes from
//
// The console watches every flow's KV bucket (jetstream.KeyValue.WatchAll)
// and keeps its records in memory in an engine.FlowRecords, the same code
// that "runner status" reads with; it lists the buckets again every few
// seconds for new flows. Pages and event streams render from that copy,
// never from the bucket, so a flow of ten thousand files renders in
// milliseconds and a change to any record wakes the streams at once (each
// sends at most every half second, and only fragments that changed). The
// records carry each delivery's parts written, so per-file, per-sink
// progress is the same for a file delivered by any runner of a cluster; a
// delivery's rate is the difference between its last two records. A
// console inside "runner run --http" also samples the counters of its own
// runs every second (Options.Stats: engine.Run.Stats), which count bytes
// as they are written rather than as parts are recorded, and shows them
// as "this runner" with exact rates. Runners are named from the records:
// the holder of a flow's source lease, and the owners of deliveries under
// way.
//
// # Access
//
// Off unless asked for. Users log in with a name and password, kept as
// bcrypt hashes in an access file (LoadAccess), and programs may send
// "Authorization: Bearer TOKEN" with a token whose SHA-256 is in the same
// file. Each has a role: viewer (everything but actions) or operator (may
// replay). A login is a session cookie signed with HMAC-SHA256 under a key
// made at start (HttpOnly, SameSite=Strict, Secure over TLS, 12 hours);
// nothing is stored on the server, so a restart logs everyone out. Every
// POST must carry the session's CSRF token (an HMAC of the session's
// nonce: the field "csrf", or the header X-CSRF-Token that htmx sends from
// the page), and cross-origin browser requests are refused
// (http.CrossOriginProtection) — login included. A request with a bearer
// token needs no CSRF token: no browser adds that header by itself.
// Without an access file the console refuses to start unless NoAuth is set,
// and then it answers only on the loopback interface.
//
// Every action goes to the flow's audit trail with who did it: a replay is
// recorded as pipeline.EventReplay with By set to the user's name and
// "(console)", through audit.Append and engine.Report.Events, as "runner
// replay" records its own. Logins and refusals go to the log (never a
// password or token).
//
// # Accessibility and small screens
//
// Every input has a label, every button a name; focus is always visible;
// colours meet WCAG AA contrast and states are said in words beside their
// colour; progress is a <progress> element with a label; tables have
// captions and column headers, and below 40rem each row becomes a card
// whose cells carry their heading. A skip link leads to the content.
package console
