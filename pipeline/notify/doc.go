// Package notify tells people and programs about a flow's files: a
// Notifier receives the engine's events (it is a pipeline.EventSink), turns
// those the flow's notify rules ask for into notifications, keeps them on
// the JetStream bus until they are sent, and sends them to webhooks (JSON,
// signed) and by e-mail (SMTP).
//
//	n, err := notify.NewForFlow(ctx, js, flow, notify.Options{Logger: log, Registerer: reg})
//	...
//	defer n.Close()
//	// hand n to the engine as the flow's pipeline.EventSink
//
// # Rules
//
// A rule (pipeline.NotifyRule, the flow file's notify list) names triggers
// and one target. The triggers are a file's outcome, passed, failed or
// mixed (an EventAcked with that Outcome; skipped files are never told),
// and the SLA events sla_warning, sla_missed and sla_met. A rule with sinks
// is told of a passed file only if it committed at one of them, and of a
// failed or mixed file only if its delivery to one of them failed; it reads
// the per-sink results of the event (pipeline.Event.Sinks) and, when the
// engine gives none, knows them from a passed or failed outcome and tells
// of a mixed one (a missed notification costs more than an extra one). An
// SLA event that names a sink must name one of the rule's; one that names
// none is told. Each event becomes at most one notification per target:
// rules that send to the same place share it.
//
// # Why the notifications wait on the bus
//
// Emit publishes each notification to the flow's work-queue stream
// (MFT_<flow>_NOTIFY, file storage) and returns once JetStream has stored
// it, before anything is sent. So a notification survives a crash the
// moment Emit returns, and the next run, or another runner of the flow,
// sends it; and Emit never waits for a receiver: files never wait for
// notifications. Sending happens in the background, one durable consumer
// per target, so that a target that fails (whose notifications wait on the
// consumer's pending list) never holds up another.
//
// Each message carries a Nats-Msg-Id derived from its event and target,
// without the event's time or runner: an event emitted again after a crash
// (within Options.DuplicateWindow, default 2 minutes) is stored once. The
// same id is the notification's ID, sent as X-Mftflow-Delivery and as the
// e-mail's Message-ID. Delivery is at least once: a runner that dies after
// the receiver took a notification but before the bus heard of it leaves
// it to be sent again, with the same id, so receivers that must not act
// twice keep the ids they have seen. Notifications may arrive out of order
// after a retry; each carries its event's time.
//
// # Failing targets
//
// A failed attempt hands the notification back to the bus with a delay
// (a NAK with delay: the bus holds the timer, which survives a crash and
// costs no goroutine per waiting notification). While a target fails, one
// notification probes it after each backoff step (exponential, from
// Options.InitialBackoff, 1s, doubling up to MaxBackoff, 5m, with jitter,
// computed by github.com/cenkalti/backoff/v5; a longer Retry-After from
// the receiver wins, up to an hour), and the others are handed back
// without an attempt until then: a receiver that is down gets one request
// per step, not one per waiting notification, and the whole backlog as soon
// as it answers again.
//
// A notification is given up, never sent, when the receiver refuses it
// for good: a webhook's 4xx other than 401, 403, 408, 425 and 429 (410
// Gone among them), a redirect (3xx: set the URL to where it points;
// redirects are not followed, so the rule's headers never reach a host
// nobody configured), or a mail server's 5xx reply (RFC 5321's permanent
// errors) other than about the login. Anything else (timeouts, refused
// connections, 5xx answers, 408, 429, TLS failures, a mail server's 4xx,
// and refused credentials, 401, 403 or SMTP 530, 534, 535, 538, which an
// operator fixes without losing what waits) is tried again, until an
// attempt fails when the notification is older than
// Options.GiveUpAfter (24h, counted from when it was put on the bus: a
// runner that was stopped for two days still tries what waited before
// dropping it). A give-up is an error log naming the notification, its
// event and file and the last error, a count in given_up_total, and the
// target's state on the bus. Nothing else is ever dropped: the bus keeps
// the rest however long the receiver is down.
//
// The state of each target lives in the KV bucket mftnotify_<flow>, written
// with compare-and-swap by every runner: failing or not, since when, the
// failures in a row and the last error, and the notifications given up
// with the latest of them. Inspect reads it with each target's pending
// count, from any process ("runner status"); Notifier.Status adds which
// rules send to each target and the events this Notifier could not
// publish.
//
// A target is identified by a fingerprint of where it sends and how
// (URL, header names and timeout; server, TLS mode, user, sender,
// recipients, subject and timeout), never its secret, password or header
// values: a rotated secret keeps the target's waiting notifications, a new
// URL or recipient list is a new target. Notifications waiting for a target
// that no rule names any more stay on the bus, neither sent nor dropped,
// and show in Status with no rules until a rule names the target again or
// an operator purges the stream's subject.
//
// # Webhooks
//
// Each notification is a POST of its Message as JSON (the event's fields
// with id, the trigger as "event", and per-sink results as "sinks") with
// Content-Type application/json, X-Mftflow-Event (the trigger),
// X-Mftflow-Delivery (the id) and, when the rule has a secret,
// X-Mftflow-Signature: "sha256=" and the hex HMAC-SHA256 of the body under
// the secret. The secret is optional, but without it a receiver cannot tell
// a forged notification from a real one; receivers check it with
// VerifySignature on the body as read. A 2xx answer means delivered. The
// rule's timeout (default 10s) bounds each attempt. URLs may hold tokens,
// so errors, logs and status show only their scheme and host.
//
// # E-mail
//
// Each notification is a plain-text mail (UTF-8, quoted-printable) listing
// the event's facts, with the rule's subject template filled in, sent with
// github.com/emersion/go-smtp. tls: starttls (the default, port 587)
// upgrades the connection before anything else and fails against a server
// that does not offer STARTTLS; tls: tls speaks TLS from the first byte
// (port 465); tls: none is plain text and allowed only for a server on this
// machine (a local relay), since it would carry the password and the mail
// in clear across a network. With a user, the client logs in with AUTH
// PLAIN, or LOGIN when the server offers only that. Certificates are
// checked against the system's roots (Options.TLSConfig for others). The
// mail carries Auto-Submitted: auto-generated, so vacation replies stay
// away.
//
// # Metrics
//
// With Options.Registerer, all labelled flow and channel (webhook, email)
// except the last:
//
//	mftflow_notify_sent_total             notifications the receiver accepted
//	mftflow_notify_attempt_failures_total attempts that failed (tried again unless given up)
//	mftflow_notify_given_up_total         notifications dropped unsent
//	mftflow_notify_pending                notifications on the bus not sent yet (read every 10s)
//	mftflow_notify_publish_failures_total events whose notification could not be put on the bus (flow only)
//
// Secrets (webhook secrets, header values, SMTP passwords) never appear in
// errors, logs, status or metrics.
package notify
