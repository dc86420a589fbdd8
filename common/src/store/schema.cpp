// The SQLite schema, as numbered migrations. A migration is never edited once released: a
// change is a new entry at the end. Each is applied inside the one transaction that also
// records it in schema_version, so a store is always at exactly one version.
//
// Layout (normalised, indexed for the dashboard's questions: pass/fail over time per policy
// domain and source IP, TLS failures by result type):
//   raw_messages + raw_chunks   every received message, zlib-compressed, in ≤1 MiB chunks
//   reports                     one row per report of any type; the de-dup key is UNIQUE
//   dmarc_reports               RFC 7489 App. C / RFC 9990 report_metadata + policy_published
//   dmarc_records               row + identifiers + auth_results (JSON, since migration 3)
//   tls_reports, tls_policies, tls_failures   RFC 8460 §4.4
//   arf_reports                 RFC 5965 / RFC 6591 feedback fields
//   dsn_reports, dsn_recipients RFC 3464 §2.2 / §2.3
//   evaluations, evaluation_intervals   (migration 2) the milter's evaluations per hour
// Migration 3 moved a DMARC record's auth_results into the record row and dropped the source
// IP index (see its comment), and added reports.complete.
//   outbox, outbox_rate          (migration 4) reports we send, failure report rate limits
//   aggregate_watermarks, aggregate_reports, tls_counts, tls_count_failures, tls_rejected,
//   suppressions                 (migration 5) aggregate reports we send (issue 5)
//   webhook_events, alert_watermarks, metrics   (migration 6) warnings, webhooks, /metrics
// Lists (rcpt_to, policy-string, header fields, errors) are JSON arrays in TEXT columns.
#include "store/schema.hpp"

#include <iterator>
#include <string>

namespace mailreport::store::sqlite {

namespace {

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE raw_messages (
  id INTEGER PRIMARY KEY,
  received_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  rcpt_to TEXT NOT NULL,
  client TEXT NOT NULL,
  size INTEGER NOT NULL,
  compressed_size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  parse_status TEXT NOT NULL
    CHECK (parse_status IN ('pending', 'parsed', 'duplicate', 'unparsed')),
  parse_error TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX raw_messages_received_at ON raw_messages (received_at);
CREATE INDEX raw_messages_parse_status ON raw_messages (parse_status, id);
CREATE INDEX raw_messages_sha256 ON raw_messages (sha256);

CREATE TABLE raw_chunks (
  message_id INTEGER NOT NULL REFERENCES raw_messages (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (message_id, seq)
) STRICT;

CREATE TABLE reports (
  id INTEGER PRIMARY KEY,
  message_id INTEGER REFERENCES raw_messages (id) ON DELETE SET NULL,
  type TEXT NOT NULL CHECK (type IN ('dmarc-aggregate', 'tls-aggregate', 'arf', 'dsn')),
  org_name TEXT NOT NULL,
  report_id TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  date_begin INTEGER NOT NULL,
  date_end INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  errors TEXT NOT NULL DEFAULT '[]',
  UNIQUE (type, org_name, report_id, policy_domain)
) STRICT;
CREATE INDEX reports_type_domain_begin ON reports (type, policy_domain, date_begin);
CREATE INDEX reports_type_begin ON reports (type, date_begin);
CREATE INDEX reports_received_at ON reports (received_at);
CREATE INDEX reports_message ON reports (message_id);

CREATE TABLE dmarc_reports (
  report_id INTEGER PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
  version TEXT NOT NULL,
  namespace TEXT NOT NULL,
  email TEXT NOT NULL,
  extra_contact_info TEXT NOT NULL,
  generator TEXT NOT NULL,
  reporter_errors TEXT NOT NULL,
  domain TEXT NOT NULL,
  discovery_method TEXT NOT NULL,
  adkim TEXT NOT NULL,
  aspf TEXT NOT NULL,
  p TEXT NOT NULL,
  sp TEXT NOT NULL,
  np TEXT NOT NULL,
  pct INTEGER,
  fo TEXT NOT NULL,
  testing TEXT NOT NULL
) STRICT;

CREATE TABLE dmarc_records (
  id INTEGER PRIMARY KEY,
  report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  source_ip TEXT NOT NULL,
  count INTEGER NOT NULL,
  disposition TEXT NOT NULL,
  dkim TEXT NOT NULL,
  spf TEXT NOT NULL,
  reasons TEXT NOT NULL,
  header_from TEXT NOT NULL,
  envelope_from TEXT NOT NULL,
  envelope_to TEXT NOT NULL
) STRICT;
CREATE INDEX dmarc_records_report ON dmarc_records (report_id);
CREATE INDEX dmarc_records_source_ip ON dmarc_records (source_ip);

-- Clustered by record (WITHOUT ROWID): rows arrive in record order, so inserting appends to
-- one B-tree instead of maintaining a table and an index (about a third of ingest time).
CREATE TABLE dmarc_auth_results (
  record_id INTEGER NOT NULL REFERENCES dmarc_records (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,  -- order within the record: DKIM results first, then SPF
  kind TEXT NOT NULL CHECK (kind IN ('dkim', 'spf')),
  domain TEXT NOT NULL,
  selector TEXT NOT NULL,
  scope TEXT NOT NULL,
  result TEXT NOT NULL,
  human_result TEXT NOT NULL,
  PRIMARY KEY (record_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE tls_reports (
  report_id INTEGER PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
  contact_info TEXT NOT NULL
) STRICT;

CREATE TABLE tls_policies (
  id INTEGER PRIMARY KEY,
  report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  policy_type TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  policy_string TEXT NOT NULL,
  mx_host TEXT NOT NULL,
  success_count INTEGER NOT NULL,
  failure_count INTEGER NOT NULL
) STRICT;
CREATE INDEX tls_policies_report ON tls_policies (report_id);

CREATE TABLE tls_failures (
  id INTEGER PRIMARY KEY,
  policy_id INTEGER NOT NULL REFERENCES tls_policies (id) ON DELETE CASCADE,
  result_type TEXT NOT NULL,
  sending_mta_ip TEXT NOT NULL,
  receiving_mx_hostname TEXT NOT NULL,
  receiving_mx_helo TEXT NOT NULL,
  receiving_ip TEXT NOT NULL,
  failed_session_count INTEGER NOT NULL,
  additional_information TEXT NOT NULL,
  failure_reason_code TEXT NOT NULL
) STRICT;
CREATE INDEX tls_failures_policy ON tls_failures (policy_id);
CREATE INDEX tls_failures_result_type ON tls_failures (result_type);

CREATE TABLE arf_reports (
  report_id INTEGER PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
  feedback_type TEXT NOT NULL,
  auth_failure TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  arrival_date INTEGER,
  arrival_date_raw TEXT NOT NULL,
  reported_domain TEXT NOT NULL,
  reported_uri TEXT NOT NULL,
  original_mail_from TEXT NOT NULL,
  original_rcpt_to TEXT NOT NULL,
  user_agent TEXT NOT NULL,
  version TEXT NOT NULL,
  reporting_mta TEXT NOT NULL,
  delivery_result TEXT NOT NULL,
  authentication_results TEXT NOT NULL,
  dkim_domain TEXT NOT NULL,
  dkim_identity TEXT NOT NULL,
  dkim_selector TEXT NOT NULL,
  dkim_canonicalized_header TEXT NOT NULL,
  dkim_canonicalized_body TEXT NOT NULL,
  spf_dns TEXT NOT NULL,
  identity_alignment TEXT NOT NULL,
  incidents INTEGER,
  fields TEXT NOT NULL,
  original_headers TEXT NOT NULL,
  original_message_type TEXT NOT NULL,
  human_readable TEXT NOT NULL,
  subject TEXT NOT NULL,
  from_header TEXT NOT NULL,
  message_id_header TEXT NOT NULL
) STRICT;
CREATE INDEX arf_reports_feedback_type ON arf_reports (feedback_type, auth_failure);
CREATE INDEX arf_reports_source_ip ON arf_reports (source_ip);

CREATE TABLE dsn_reports (
  report_id INTEGER PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
  original_envelope_id TEXT NOT NULL,
  reporting_mta TEXT NOT NULL,
  dsn_gateway TEXT NOT NULL,
  received_from_mta TEXT NOT NULL,
  arrival_date INTEGER,
  fields TEXT NOT NULL,
  original_headers TEXT NOT NULL,
  subject TEXT NOT NULL,
  from_header TEXT NOT NULL,
  message_id_header TEXT NOT NULL
) STRICT;

CREATE TABLE dsn_recipients (
  id INTEGER PRIMARY KEY,
  report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
  original_recipient TEXT NOT NULL,
  final_recipient TEXT NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  remote_mta TEXT NOT NULL,
  diagnostic_code TEXT NOT NULL,
  last_attempt_date INTEGER,
  final_log_id TEXT NOT NULL,
  will_retry_until INTEGER,
  fields TEXT NOT NULL
) STRICT;
CREATE INDEX dsn_recipients_report ON dsn_recipients (report_id);
CREATE INDEX dsn_recipients_final_recipient ON dsn_recipients (final_recipient);
)sql"},
    // The milter's evaluations, aggregated as recorded (sqlite_evaluations.cpp).
    {2, R"sql(
-- One row per (policy domain, UTC hour, identity); `key` is a hash of the identity columns
-- (policy as published, source IP, identifiers, results), so that recording a message is one
-- upsert on evaluations_identity. The same index serves the aggregate report's question
-- (summed rows of one policy domain over a day: an equality and a range).
CREATE TABLE evaluations (
  id INTEGER PRIMARY KEY,
  policy_domain TEXT NOT NULL,
  interval_begin INTEGER NOT NULL,
  key TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  discovery_method TEXT NOT NULL,
  p TEXT NOT NULL,
  sp TEXT NOT NULL,
  np TEXT NOT NULL,
  adkim TEXT NOT NULL,
  aspf TEXT NOT NULL,
  pct INTEGER NOT NULL,
  fo TEXT NOT NULL,
  testing TEXT NOT NULL,
  psd TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  header_from TEXT NOT NULL,
  envelope_from TEXT NOT NULL,
  envelope_to TEXT NOT NULL,
  disposition TEXT NOT NULL,
  dkim TEXT NOT NULL,
  spf TEXT NOT NULL,
  reasons TEXT NOT NULL,
  dkim_results TEXT NOT NULL,
  spf_results TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX evaluations_identity ON evaluations (policy_domain, interval_begin, key);
CREATE INDEX evaluations_interval ON evaluations (interval_begin);

-- The rua/ruf published by a policy domain during an hour (the latest seen).
CREATE TABLE evaluation_intervals (
  policy_domain TEXT NOT NULL,
  interval_begin INTEGER NOT NULL,
  rua TEXT NOT NULL,
  ruf TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (policy_domain, interval_begin)
) STRICT, WITHOUT ROWID;
)sql"},
    {3, R"sql(
-- A DMARC record's auth_results are only ever read with their record, so they live in it as
-- JSON (like the evaluations' results): ingest writes one row per record instead of three,
-- which was a third of the CPU time of a large import. The source IP index served no query
-- and cost another 8% (random inserts into a B-tree); a query by IP scans, or gets an index
-- when a feature needs one.
ALTER TABLE dmarc_records ADD COLUMN dkim_results TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dmarc_records ADD COLUMN spf_results TEXT NOT NULL DEFAULT '[]';
UPDATE dmarc_records SET
  dkim_results = (SELECT json_group_array(json_object('domain', domain, 'selector', selector,
                    'result', result, 'human_result', human_result))
                  FROM (SELECT * FROM dmarc_auth_results a
                        WHERE a.record_id = dmarc_records.id AND a.kind = 'dkim' ORDER BY a.seq)),
  spf_results = (SELECT json_group_array(json_object('domain', domain, 'scope', scope,
                   'result', result, 'human_result', human_result))
                 FROM (SELECT * FROM dmarc_auth_results a
                       WHERE a.record_id = dmarc_records.id AND a.kind = 'spf' ORDER BY a.seq));
DROP TABLE dmarc_auth_results;
DROP INDEX dmarc_records_source_ip;

-- 0 when the report's input ended early (a truncated message): a complete copy of the same
-- report (same org, id and domain) that arrives later replaces it instead of being counted as
-- a duplicate.
ALTER TABLE reports ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
)sql"},
    // Reports we send (sqlite_outbox.cpp): the outbox and the failure reports' rate limits.
    {4, R"sql(
-- One row per report to send, from queued to sent or failed. A claim moves next_attempt_at
-- forward (the lease), so the due entries are found by (state, next_attempt_at).
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  recipient TEXT NOT NULL,
  reported_domain TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  message_id TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- report.<kind>.send = "N/period": reports queued per (kind, recipient) in a fixed window
-- [window_start, window_end), windows aligned to the epoch. Windows that ended are deleted as
-- new ones open and by the outbox pass.
CREATE TABLE outbox_rate (
  kind TEXT NOT NULL,
  recipient TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (kind, recipient, window_start)
) STRICT, WITHOUT ROWID;
CREATE INDEX outbox_rate_end ON outbox_rate (window_end);
)sql"},
    // Aggregate reports we send (issue 5; sqlite_aggregate.cpp): what is already reported,
    // the reports built, the TLS collector's counts, and the destinations that bounce.
    {5, R"sql(
-- Messages of the row already in an aggregate report we queued (<= count). A builder moves it
-- from the value it read to the count it read, compare-and-set, in the transaction that
-- queues the report; messages recorded meanwhile stay unreported.
ALTER TABLE evaluations ADD COLUMN reported INTEGER NOT NULL DEFAULT 0;
-- The builder's walk: rows with unreported messages, by policy domain. Partial, so that rows
-- already reported (nearly all of them, once reports go out) cost the walk nothing.
CREATE INDEX evaluations_unreported ON evaluations (policy_domain) WHERE count > reported;

-- Per report kind, the end of the last interval built (the next one begins there).
CREATE TABLE aggregate_watermarks (
  kind TEXT PRIMARY KEY,
  end_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Every aggregate report we built, with its gzip file, kept while its deliveries (outbox
-- entries of the aggregate kinds, whose payload names the report's id) are pending and as the
-- record of what was sent. report_id is ours and unique (RFC 7489 §7.2.1.1 filename, Subject).
CREATE TABLE aggregate_reports (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  report_id TEXT NOT NULL UNIQUE,
  policy_domain TEXT NOT NULL,
  date_begin INTEGER NOT NULL,
  date_end INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  filename TEXT NOT NULL,
  records INTEGER NOT NULL,
  messages INTEGER NOT NULL,
  content BLOB NOT NULL
) STRICT;
CREATE INDEX aggregate_reports_begin ON aggregate_reports (date_begin);
CREATE INDEX aggregate_reports_domain ON aggregate_reports (policy_domain, date_begin);

-- The TLS collector's counts (RFC 8460 §4.4): one row per UTC day, recipient domain, TLSRPT
-- record as the MTA found it and policy (type, domain, strings and MX hosts as JSON arrays),
-- with successful and failed sessions and how many of each are already reported. The unique
-- index is the collector's upsert and the builder's order (domain, record, day).
CREATE TABLE tls_counts (
  id INTEGER PRIMARY KEY,
  day INTEGER NOT NULL,
  domain TEXT NOT NULL,
  record TEXT NOT NULL,
  policy_type TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  policy_string TEXT NOT NULL,
  mx_host TEXT NOT NULL,
  successful INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  reported_successful INTEGER NOT NULL DEFAULT 0,
  reported_failed INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX tls_counts_identity
  ON tls_counts (domain, record, day, policy_type, policy_domain, policy_string, mx_host);
CREATE INDEX tls_counts_day ON tls_counts (day);

-- A count row's failed sessions per distinct failure detail (RFC 8460 §4.3 result type and
-- the session's addresses, names and codes), with how many are already reported.
CREATE TABLE tls_count_failures (
  id INTEGER PRIMARY KEY,
  count_id INTEGER NOT NULL REFERENCES tls_counts (id) ON DELETE CASCADE,
  result_type TEXT NOT NULL,
  sending_mta_ip TEXT NOT NULL,
  receiving_mx_hostname TEXT NOT NULL,
  receiving_mx_helo TEXT NOT NULL,
  receiving_ip TEXT NOT NULL,
  additional_information TEXT NOT NULL,
  failure_reason_code TEXT NOT NULL,
  count INTEGER NOT NULL DEFAULT 0,
  reported INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX tls_count_failures_identity ON tls_count_failures (count_id, result_type,
  sending_mta_ip, receiving_mx_hostname, receiving_mx_helo, receiving_ip,
  additional_information, failure_reason_code);

-- Datagrams the collector could not parse, as received (bytes), with the reason; only the
-- newest 1000 are kept.
CREATE TABLE tls_rejected (
  id INTEGER PRIMARY KEY,
  received_at INTEGER NOT NULL,
  datagram BLOB NOT NULL,
  reason TEXT NOT NULL
) STRICT;

-- Report destinations that bounce (DSNs matched to a sent outbox entry) or that the admin
-- suppressed: nothing is sent to a suppressed address. address is lower case.
CREATE TABLE suppressions (
  address TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  last_failure_at INTEGER NOT NULL DEFAULT 0,
  suppressed INTEGER NOT NULL DEFAULT 0,
  manual INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;

-- Bounce matching: a DSN names the Message-ID of the report it returns.
CREATE INDEX outbox_message_id ON outbox (message_id);
)sql"},
    // Warnings, webhooks and metrics (issue 6).
    {6, R"sql(
-- Events waiting for one webhook each (the pending queue survives restarts); delivered ones
-- are deleted.
CREATE TABLE webhook_events (
  id INTEGER PRIMARY KEY,
  webhook TEXT NOT NULL,
  type TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX webhook_events_due ON webhook_events (webhook, next_attempt_at);

-- How far the alert scanner has read (report ids, raw message ids, ...), by name.
CREATE TABLE alert_watermarks (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Counters and gauges of every process (node = host name), for /metrics.
CREATE TABLE metrics (
  node TEXT NOT NULL,
  name TEXT NOT NULL,
  labels TEXT NOT NULL,
  gauge INTEGER NOT NULL,
  value INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (node, name, labels)
) STRICT, WITHOUT ROWID;

-- The dashboard's time series read DMARC reports by period.
CREATE INDEX reports_begin ON reports (date_begin);
)sql"},
};

constexpr const char* kVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT";

}  // namespace

int latest_version() noexcept {
  return std::prev(std::end(kMigrations))->version;
}

Result<int> current_version(Connection& db) {
  auto exists = db.query(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'");
  if (!exists) return std::move(exists).error();
  auto row = exists->step();
  if (!row) return std::move(row).error();
  if (exists->i64(0) == 0) return 0;
  auto q = db.query("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!q) return std::move(q).error();
  auto r = q->step();
  if (!r) return std::move(r).error();
  return static_cast<int>(q->i64(0));
}

Status migrate(Connection& db) {
  if (auto st = db.exec("BEGIN IMMEDIATE"); !st) return st;
  auto fail = [&db](Error e) -> Status {
    (void)db.exec("ROLLBACK");
    return e;
  };
  if (auto st = db.exec(kVersionTable); !st) return fail(std::move(st).error());
  auto current = current_version(db);
  if (!current) return fail(std::move(current).error());
  if (*current > latest_version()) {
    return fail(make_error(ErrorCode::Store, "store schema version " + std::to_string(*current) +
                                                 " is newer than this build's (" +
                                                 std::to_string(latest_version()) +
                                                 "); upgrade mailreport"));
  }
  for (const auto& m : kMigrations) {
    if (m.version <= *current) continue;
    if (auto st = db.exec(m.sql); !st) {
      return fail(make_error(ErrorCode::Store,
                             "migration " + std::to_string(m.version) + ": " + st.error().message));
    }
    auto ins = db.query("INSERT INTO schema_version (version, applied_at) VALUES (?, unixepoch())");
    if (!ins) return fail(std::move(ins).error());
    if (auto st = ins->bind(1, m.version).run(); !st) return fail(std::move(st).error());
  }
  return db.exec("COMMIT");
}

}  // namespace mailreport::store::sqlite
