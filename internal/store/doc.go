// Package store keeps cccp's durable state in one bbolt file: runs and their
// stages, accepted webhook deliveries, the report outbox and small bot state.
//
// Bucket tree (everything lives under a versioned root, as containerd does;
// a later incompatible layout gets a new root and a migration):
//
//	meta/
//	  schema                    -> uint64 big-endian: version of the layout below
//	v1/
//	  runs/
//	    <seq>                   -> JSON Run; seq is a uint64 big-endian (run ID "17" is seq 17)
//	  runs_by_project/
//	    <project> 0x00 <seq>    -> empty; project index, the 0x00 separator means a
//	                               prefix scan for "org/app" never matches "org/app-infra"
//	  runs_unfinished/
//	    <seq>                   -> empty; queued or running runs, for resume after restart
//	  latest/
//	    <kind> 0x00 <project>   -> <seq> of the newest run of that kind ("" kind = any)
//	  deliveries/
//	    <seq>                   -> S2-compressed delivery record; keys grow, so pages fill
//	                               sequentially (FillPercent 1.0)
//	  delivery_ids/
//	    <forge> 0x00 <id>       -> <seq> (8 bytes) + finished unix-nano (8 bytes, 0 = pending)
//	  delivery_runs/            (created on first use; delivery_runs.go)
//	    <forge> 0x00 <id> 0x00 <run seq> -> JSON link: the runs a delivery's requests made
//	                               or were folded into, written in the run's transaction,
//	                               dropped with the delivery_ids key (PruneDeliveries)
//	  delivery_attempts/        (schema 2)
//	    <seq>                   -> JSON Attempt: a delivery whose routing failed; pending
//	                               ones wait for NextAttempt, Failed ones keep their body in
//	                               deliveries/<seq> for a replay until pruned
//	  run_changes/              (schema 2)
//	    <seq>                   -> uint64 big-endian version: a run caused by a forge event
//	                               changed (written in the run's own transaction) and its
//	                               reports are not yet in reports/ (PutReports acknowledges)
//	  runs_finished/            (created on first use)
//	    <seq>                   -> empty: the run went from unfinished to finished (written
//	                               in the run's own transaction) and its mail is not yet
//	                               decided (QueueMail acknowledges)
//	  mail/                     (created on first use)
//	    <seq>                   -> JSON Mail: the email outbox; a sent mail is deleted, a
//	                               refused one stays with Failed and the server's answer
//	                               until retention prunes it (PruneMail)
//	  mail_due/                 (schema 3, filled from mail/ by the migration)
//	    <unix-nano> <seq>       -> empty: a waiting mail by its NextAttempt (0: never
//	                               tried), both uint64 big-endian; DueMail walks it
//	  mail_failed/              (schema 3, filled from mail/ by the migration)
//	    <unix-nano> <seq>       -> empty: a given-up mail by when it was given up;
//	                               PruneMail walks it
//	  reports/
//	    <key>                   -> JSON Report (forge outbox, one per target)
//	  cascades/, cascade_nodes/, cascades_open/, cascade_roots/, delivered/
//	                            -> rebuild cascades and last delivered digests (cascade.go)
//	  rescans/                  (created by the first rescan; no migration)
//	    <seq>                   -> JSON Rescan: one rescan of every delivered image, with
//	                               each entry's state (its progress)
//	  scans/                    (created by the first rescan's first scan)
//	    <project> 0x00 <seq>    -> JSON Scan: one scan's findings of an entry's delivered
//	                               image, and what is new or resolved since the one before
//	  kv/
//	    <ns>/                   -> nested bucket per namespace
//	      <key>                 -> opaque bytes (ok-to-test approvals, comment ids, ...)
//
// Retention (DeleteRuns, retention.go) removes finished runs with their
// runs/, runs_by_project/ and run_changes/ entries; it keeps a run that is
// unfinished, that latest/ points at, or whose change is not yet reported.
//
// Migrations are an ordered list (see migrations.go); Open applies every
// step above the stored schema version in one transaction.
//
// Secrets: this package never stores a secret on its own account, and it
// cannot tell one apart from data. Callers pass already-redacted values:
// clone URLs without userinfo (redact.URL), logs and summaries masked by
// redact.Masker, webhook headers without signatures or tokens.
//
// Bad data: a record that fails to decode is reported in the error with its
// key; it is never deleted, and other records stay readable.
package store
