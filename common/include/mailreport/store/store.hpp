// Store: where received reports and the raw messages they came in are kept. This header is the
// seam between mailreport and its databases: SQLite (sqlite_store.hpp) for one MX, PostgreSQL
// later for several. Nothing here knows SQL; each implementation keeps its dialect to itself.
//
// Writing goes through a WriteTransaction (one per received message): the raw message is
// streamed in (compressed as it arrives), the extractor's reports are streamed into a
// ReportWriter (a report::ReportSink), the parse outcome is set, and commit() makes it all
// durable at once. Dropping a transaction without commit() rolls everything back.
//
// Reports are de-duplicated by (type, reporting org, report id, policy domain) — RFC 9990
// §3.5.4 lets a consumer discard a re-sent report; we count it and keep the raw message.
// For ARF and DSN, which have no report id, the key is (From domain or Reporting-MTA,
// Message-ID of the report message or a hash of its fields, reported/sender domain).
//
// Times are UTC epoch seconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/report/model.hpp"
#include "mailreport/report/sink.hpp"
#include "mailreport/report/tlsrpt_datagram.hpp"
#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::store {

// ---------------------------------------------------------------- raw messages

enum class ParseStatus {
  Pending,    // stored, extraction not finished (only seen inside a transaction)
  Parsed,     // at least one new report was stored
  Duplicate,  // every report it held was already stored
  Unparsed,   // nothing could be parsed; parse_error says why
};
const char* to_string(ParseStatus s) noexcept;  // "pending", "parsed", "duplicate", "unparsed"
std::optional<ParseStatus> parse_status_from_string(std::string_view s) noexcept;

// Where a raw message came from (the ingest envelope).
struct RawMeta {
  std::int64_t received_at = 0;
  std::string source;  // "lmtp", "import", "demo", ...
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string client;
};

struct RawMessageInfo {
  std::int64_t id = 0;
  RawMeta meta;
  std::uint64_t size = 0;             // bytes of the original message
  std::uint64_t compressed_size = 0;  // bytes stored
  std::string sha256;                 // hex, of the original bytes
  ParseStatus parse_status = ParseStatus::Pending;
  std::string parse_error;  // why it could not be parsed, or notes about skipped parts
};

struct RawFilter {
  std::optional<ParseStatus> status;  // nullopt = any
  std::int64_t after_id = 0;          // keyset paging: only ids greater than this
  std::size_t limit = 0;              // 0 = no limit
};

// ---------------------------------------------------------------- reports

// One report as listed: its key, period and a few type-specific figures.
struct ReportSummary {
  std::int64_t id = 0;
  std::int64_t message_id = 0;  // the raw message it came from (0 if that was purged)
  report::ReportType type = report::ReportType::DmarcAggregate;
  std::string org_name;
  std::string report_id;
  std::string policy_domain;
  std::int64_t date_begin = 0;
  std::int64_t date_end = 0;
  std::int64_t received_at = 0;
  std::size_t error_count = 0;  // salvage notes of the parser

  // DMARC aggregate: messages = sum of counts; pass = messages with an aligned DKIM or SPF
  // pass (RFC 7489 §3.1: either one is enough); fail = the rest.
  std::uint64_t messages = 0;
  std::uint64_t pass = 0;
  std::uint64_t fail = 0;
  // TLS: summed over the report's policies.
  std::uint64_t sessions_ok = 0;
  std::uint64_t sessions_failed = 0;
  // ARF
  std::string feedback_type;
  std::string source_ip;
  // DSN: the first recipient's group.
  std::string action;
  std::string status;
  std::string recipient;
};

struct ReportFilter {
  std::optional<report::ReportType> type;  // nullopt = any
  std::string domain;                      // policy domain, case-insensitive; "" = any
  std::optional<std::int64_t> since;       // reports whose period begins at or after this
  std::size_t limit = 0;                   // 0 = no limit; newest first
};

struct StoredReport {
  ReportSummary summary;
  report::Report report;
};

// ---------------------------------------------------------------- statistics

struct Summary {
  std::vector<std::pair<report::ReportType, std::uint64_t>> reports_by_type;  // every type
  std::vector<std::pair<std::string, std::uint64_t>> top_orgs;  // by report count, descending
  std::uint64_t dmarc_messages = 0;                             // sum of record counts
  std::uint64_t dmarc_pass = 0;                                 // aligned DKIM or SPF pass
  std::uint64_t dmarc_fail = 0;
  std::uint64_t tls_sessions_ok = 0;
  std::uint64_t tls_sessions_failed = 0;
  std::uint64_t raw_messages = 0;
  std::uint64_t unparsed_messages = 0;
};

struct PurgeResult {
  std::uint64_t reports = 0;
  std::uint64_t raw_messages = 0;
  // What the reports we send keep (see purge()).
  std::uint64_t evaluation_rows = 0;
  std::uint64_t tls_counts = 0;
  std::uint64_t outbox_entries = 0;
  std::uint64_t aggregate_reports = 0;
};

// ---------------------------------------------------------------- evaluations (milter)

// The milter's evaluations, aggregated as they are recorded (design.md, "Data rules"): one row
// per UTC hour, policy domain, policy as published (with how it was discovered) and everything
// an aggregate report record carries (RFC 9990 §3.1.1: source IP, identifiers, disposition,
// aligned DKIM/SPF results, override reasons, every DKIM signature's domain/selector/result/
// human_result, the SPF domain/scope/result), with the number of messages. Only evaluations
// whose DMARC record has rua= are kept: without it no aggregate report may be sent (RFC 7489
// §6.3, RFC 9989 §4.7), so there is nothing to aggregate for.
struct EvaluationRow {
  std::int64_t id = 0;
  std::int64_t interval_begin = 0;  // UTC hour; the row covers [begin, begin + 3600)
  std::int64_t first_seen = 0;      // time of the first and last message counted
  std::int64_t last_seen = 0;
  // domain = the policy domain; discovery_method "treewalk" | "psl"; sp/np "" when not
  // published; pct always set (100 when not published); testing "y" | "n".
  report::DmarcPolicyPublished policy;
  char psd = 'u';  // psd= as published: 'y', 'n', 'u'
  // The record's rua=/ruf= URIs as published, the latest seen for this policy domain and hour.
  std::vector<std::string> rua;
  std::vector<std::string> ruf;
  // row.count = messages (for for_each_unreported_evaluation: the messages not yet reported,
  // count - reported); row.policy_evaluated.disposition "none" | "quarantine" | "reject",
  // dkim/spf "pass" | "fail" (aligned); auth_results.spf human_result is always empty (the
  // SPF explanation varies per message and would split rows).
  report::DmarcRecord record;
  // Messages of this row already in an aggregate report we queued (<= the row's count). Rows
  // only grow, so messages recorded after a report was built are reported by the next one.
  std::uint64_t reported = 0;
};

struct EvaluationFilter {
  std::string domain;                 // policy domain, case-insensitive; "" = any
  std::optional<std::int64_t> since;  // rows whose hour begins at or after this
  std::optional<std::int64_t> until;  // rows whose hour begins before this
  std::size_t limit = 0;              // 0 = no limit; newest hour first
};

// ---------------------------------------------------------------- outbox (reports we send)

// A report waiting to be sent, or sent, or given up on. Failure reports are queued by
// record_evaluations (from Evaluation::failure_reports, after the rate limit); aggregate
// reports (issue 5) are queued with enqueue_outbox. mailreport serve claims due entries, builds
// the message from the payload, signs and submits it, and records the outcome.
enum class OutboxState { Queued, Sent, Failed };
const char* to_string(OutboxState s) noexcept;  // "queued", "sent", "failed"
std::optional<OutboxState> outbox_state_from_string(std::string_view s) noexcept;

struct OutboxEntry {
  std::int64_t id = 0;
  std::string kind;       // "dmarc-failure", "dkim-failure", "spf-failure" (issue 5 adds more)
  std::string recipient;  // an address, or an https URL
  std::string reported_domain;  // the domain the report is about
  std::int64_t created_at = 0;
  OutboxState state = OutboxState::Queued;
  unsigned attempts = 0;
  std::int64_t next_attempt_at = 0;  // queued: not before this time (also the claim's lease)
  std::int64_t finished_at = 0;      // sent or failed: when
  std::string last_error;            // the last temporary or the final error
  std::string message_id;            // Message-ID of the report as sent (bounce matching)
  // What the report is built from; its format belongs to the kind (failure reports:
  // store/failure_payload.hpp). Not filled by list_outbox unless asked.
  std::string payload;
};

struct OutboxFilter {
  std::optional<OutboxState> state;  // nullopt = any
  std::string kind;                  // "" = any
  std::int64_t after_id = 0;         // keyset paging
  std::size_t limit = 0;             // 0 = no limit; oldest first
  bool with_payload = false;
};

// Failure reports not queued because of the rate limit (report.<kind>.send), for logs and
// metrics; counted per record_evaluations call.
struct RecordStats {
  std::uint64_t rows = 0;             // evaluations added to aggregated rows
  std::uint64_t reports_queued = 0;   // failure reports put in the outbox
  std::uint64_t reports_limited = 0;  // refused by the rate limit
};

// ---------------------------------------------------------------- aggregate reports we send

// Exactly once (issue 5). Every counted thing (an evaluation row's messages, a TLS policy
// row's sessions, a TLS failure detail's sessions) carries how much of it is already in a
// queued report. A builder reads the unreported part from a snapshot, builds reports from it,
// and commits, in one transaction, the reports, their outbox entries and the new "reported"
// values (the counts it read, not the current ones: what was recorded meanwhile stays
// unreported). A crash before the commit leaves everything unreported; after it, nothing is
// built twice. The per-kind watermark (the end of the last interval built) says which
// intervals are due; it moves in the batch that finishes an interval.

inline constexpr std::string_view kDmarcAggregateKind = "dmarc-aggregate";
inline constexpr std::string_view kTlsAggregateKind = "tls-aggregate";

// A report built and kept until its deliveries are done; outbox entries of the aggregate
// kinds point at it (their payload: store/aggregate_payload.hpp).
struct AggregateReport {
  std::int64_t id = 0;
  std::string kind;       // kDmarcAggregateKind | kTlsAggregateKind
  std::string report_id;  // unique among our reports; also in the Subject and filename
  std::string policy_domain;
  std::int64_t date_begin = 0;  // [begin, end), UTC
  std::int64_t date_end = 0;
  std::int64_t created_at = 0;
  std::string filename;        // "S!D!BEGIN!END!ID.xml.gz" | ".json.gz"
  std::uint64_t records = 0;   // DMARC records | TLS policies
  std::uint64_t messages = 0;  // DMARC messages | TLS sessions (successful + failed)
  std::string content;         // the gzip file's bytes; empty in lists
};

struct AggregateReportFilter {
  std::string kind;                   // "" = any
  std::string domain;                 // policy domain, case-insensitive; "" = any
  std::optional<std::int64_t> since;  // date_begin >= since
  std::size_t limit = 0;              // 0 = no limit; newest first
};

// The collector's counts: one row per (UTC day, recipient domain, TLSRPT record as the MTA
// found it, policy: type, strings, domain, MX hosts), with successful and failed sessions,
// and per row its failure details (one per distinct detail) with their counts.
struct TlsFailureCount {
  std::int64_t id = 0;
  report::TlsFailureDetail detail;  // failed_session_count = the count (unreported part when
                                    // read for a report)
  std::uint64_t reported = 0;
};
struct TlsPolicyCount {
  std::int64_t id = 0;
  std::int64_t day = 0;  // UTC midnight
  std::string domain;    // the recipient domain (datagram "d"), lower case
  std::string record;    // its TLSRPT record (datagram "pr")
  // policy.total_*_session_count = the counts (unreported parts when read for a report)
  report::TlsPolicy policy;
  std::uint64_t reported_successful = 0;
  std::uint64_t reported_failed = 0;
  std::vector<TlsFailureCount> failures;
};

// What a builder marks as reported: the counts it read (see above).
struct ReportedCount {
  enum class Table { Evaluation, TlsPolicy, TlsFailure };
  Table table = Table::Evaluation;
  std::int64_t id = 0;
  // The new reported values (totals, not increments): evaluation: messages; TLS policy:
  // successful; TLS failure: sessions.
  std::uint64_t count = 0;
  std::uint64_t count2 = 0;  // TLS policy: failed
  // The reported values the builder read; the commit fails with Conflict when the row's
  // reported values are no longer these (another builder reported it meanwhile).
  std::uint64_t was = 0;
  std::uint64_t was2 = 0;
};

// One transaction of a builder: reports with their deliveries, the counts they hold, and,
// when `watermark` is set, the kind's new watermark.
struct AggregateBatch {
  std::string kind;
  struct Item {
    AggregateReport report;               // id ignored
    std::vector<OutboxEntry> deliveries;  // kind = the batch's kind; payload set by the store
                                          // from `report` (aggregate_payload.hpp) when empty
  };
  std::vector<Item> reports;
  std::vector<ReportedCount> reported;
  std::optional<std::int64_t> watermark;
  // When set, the commit succeeds only if the kind's watermark is still this value (nullopt
  // inside: never set): a second builder racing on the same interval fails with Conflict.
  std::optional<std::optional<std::int64_t>> expect_watermark;
};

// A bounce matched to a report we sent.
struct BounceOutcome {
  std::int64_t outbox_id = 0;
  std::string recipient;
  unsigned failures = 0;    // bounces counted against the recipient, this one included
  bool suppressed = false;  // the recipient is (now) suppressed
};

struct Suppression {
  std::string address;  // lower case; an address or an https URL
  std::int64_t created_at = 0;
  unsigned failures = 0;  // bounces counted
  std::int64_t last_failure_at = 0;
  bool suppressed = false;  // false: failures counted, not (yet) suppressed
  bool manual = false;      // added by `mailreport suppress add`
  std::string reason;       // the last bounce's status/diagnostic, or the admin's words
};

// ---------------------------------------------------------------- dashboard queries (issue 6)

// The dashboard's and the JSON API's questions about what we received (incoming reports) and
// what we send. Times are UTC epoch seconds; a "day" is a UTC midnight.

// A page of incoming reports, filtered. Newest first (by date_begin, then id) unless
// oldest_first; oldest_first with after_id is keyset paging by id, for readers that follow new
// reports (the alert scanner).
struct ReportQuery {
  std::optional<report::ReportType> type;  // nullopt = any
  std::string domain;    // policy domain (ARF: reported domain; DSN: as stored), exact,
                         // case-insensitive; "" = any
  std::string reporter;  // org_name contains this, case-insensitive; "" = any
  std::optional<std::int64_t> from;  // date_begin >= from
  std::optional<std::int64_t> to;    // date_begin < to
  // "" = any. DMARC: "pass" = every message passed, "fail" = at least one failed; TLS: "pass" =
  // no failed session, "fail" = some; ARF: the feedback type ("abuse", "auth-failure", ...);
  // DSN: the first recipient's action ("failed", "delayed", ...).
  std::string result;
  std::int64_t after_id = 0;  // only ids greater than this
  bool oldest_first = false;  // ascending id instead of newest first
  std::size_t limit = 50;     // 0 = no limit
  std::size_t offset = 0;
};
struct ReportPage {
  std::vector<ReportSummary> items;
  std::uint64_t total = 0;  // reports matching the filter (ignoring limit and offset)
};

// Which data a time series or a ranking covers.
struct SeriesQuery {
  std::string domain;     // policy domain; "" = all
  std::string source_ip;  // DMARC only: one source; "" = all
  std::int64_t from = 0;  // report periods (date_begin) in [from, to)
  std::int64_t to = 0;    // 0 = no upper bound
};

// Messages per UTC day of the reports' date_begin, by DMARC result (aligned DKIM or SPF pass,
// RFC 7489 §3.1) and by disposition (policy_evaluated). Days without data are left out.
struct DmarcDayPoint {
  std::int64_t day = 0;
  std::uint64_t messages = 0;
  std::uint64_t pass = 0;
  std::uint64_t fail = 0;
  std::uint64_t none = 0;  // disposition
  std::uint64_t quarantine = 0;
  std::uint64_t reject = 0;
};

// A source IP in incoming DMARC reports, with its messages; top_failing_sources orders by
// fail descending, then messages.
struct SourceStat {
  std::string source_ip;
  std::uint64_t messages = 0;
  std::uint64_t pass = 0;
  std::uint64_t fail = 0;
  std::uint64_t reports = 0;       // reports that name it
  std::int64_t last_seen = 0;      // latest date_end of those reports
  std::vector<std::string> header_from;  // distinct header_from domains, at most 5, sorted
  std::vector<std::string> policy_domains;  // at most 5, sorted
};

// TLS sessions per UTC day from incoming TLS reports.
struct TlsDayPoint {
  std::int64_t day = 0;
  std::uint64_t successful = 0;
  std::uint64_t failed = 0;
};
// Failed sessions by result type (RFC 8460 §4.3), descending.
struct TlsFailureStat {
  std::string result_type;
  std::uint64_t sessions = 0;
  std::uint64_t reports = 0;
};

// The outbox by kind and state: how many, and the oldest still queued.
struct OutboxStat {
  std::string kind;
  OutboxState state = OutboxState::Queued;
  std::uint64_t count = 0;
  std::int64_t oldest_created_at = 0;  // min created_at of these entries
};

// The milter's evaluations summed per policy domain over hours in [from, to).
struct EvaluationStat {
  std::string policy_domain;
  std::uint64_t messages = 0;
  std::uint64_t pass = 0;  // aligned DKIM or SPF pass
  std::uint64_t fail = 0;
  std::uint64_t quarantine = 0;  // disposition applied
  std::uint64_t reject = 0;
  std::uint64_t reported = 0;  // messages already in an aggregate report we queued
  std::uint64_t sources = 0;   // distinct source IPs
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
};

// ---------------------------------------------------------------- warnings and webhooks (issue 6)

// An event waiting to be POSTed to one webhook (webhook.<id>): the pending queue lives in the
// store so that a restart loses nothing. Delivered events are deleted; events older than the
// webhook's discard-after are dropped.
struct WebhookEvent {
  std::int64_t id = 0;
  std::string webhook;  // the webhook id
  std::string type;     // event name, e.g. "dmarc.failures"
  std::int64_t created_at = 0;
  std::string body;  // the event as one JSON object (an element of the POSTed "events")
  unsigned attempts = 0;
  std::int64_t next_attempt_at = 0;  // not before (0 on enqueue: created_at)
  std::string last_error;
};

// What the alert scanner found since its watermarks, committed at once: the events (one per
// webhook that wants it) and the watermarks' new values. A crash before the commit scans the
// same data again; after it, nothing is warned twice.
struct AlertBatch {
  std::vector<WebhookEvent> events;  // id, attempts, last_error ignored
  std::vector<std::pair<std::string, std::int64_t>> watermarks;  // name -> new value
  // Compare-and-set: the commit fails with Conflict unless each named watermark still has this
  // value (nullopt: not set yet), so two scanners (two nodes) never both commit a scan.
  std::vector<std::pair<std::string, std::optional<std::int64_t>>> expect;
};

// ---------------------------------------------------------------- metrics (issue 6)

// A counter or gauge of one process (node = its host name), kept in the store so that
// mailreport serve's /metrics shows what mailreport-lmtp and mailreport-milter counted too.
struct MetricValue {
  std::string node;
  std::string name;    // Prometheus metric name, e.g. "mailreport_lmtp_sessions_total"
  std::string labels;  // Prometheus label pairs without braces, sorted: kind="dmarc",state="x"
  bool gauge = false;
  std::int64_t value = 0;
  std::int64_t updated_at = 0;
};

// ---------------------------------------------------------------- writing

// The sink that stores the extractor's reports for one raw message. Each report is written
// inside its own savepoint: a DMARC report the parser abandons (no dmarc_end) or one that
// breaks a constraint is rolled back alone, and the others of the message stay.
class ReportWriter : public report::ReportSink {
 public:
  // Call after extraction: rolls back a report left open. Fails only on a store error.
  virtual Status finish() = 0;
  virtual std::size_t stored() const noexcept = 0;
  virtual std::size_t duplicates() const noexcept = 0;
  // The first store (not parse) error met, if any: the transaction must not be committed.
  virtual const std::optional<Error>& store_error() const noexcept = 0;
  // Reports that were rolled back alone, and why.
  virtual const std::vector<std::string>& notes() const noexcept = 0;
};

// A write transaction; holds the store's write lock until commit or destruction.
class WriteTransaction {
 public:
  virtual ~WriteTransaction() = default;  // rolls back unless committed

  // Streams `src` into the store, compressed; returns the stored message's description
  // (status Pending until set_parse_outcome). Fails with Store, or with src's error.
  virtual Result<RawMessageInfo> add_raw_message(const RawMeta& meta, ByteSource& src) = 0;
  // A sink storing reports that came from `message_id`, with `received_at` as their time.
  virtual std::unique_ptr<ReportWriter> report_writer(std::int64_t message_id,
                                                      std::int64_t received_at) = 0;
  // Deletes the reports derived from a message (before re-parsing it); returns how many.
  virtual Result<std::uint64_t> delete_reports_of(std::int64_t message_id) = 0;
  virtual Status set_parse_outcome(std::int64_t message_id, ParseStatus status,
                                   std::string_view error) = 0;
  virtual Status commit() = 0;
};

// ---------------------------------------------------------------- cluster jobs

// Held while a job that one node at a time should run (an aggregate build) runs; released
// when destroyed, and by the database/OS when the holder dies (PostgreSQL: a session advisory
// lock; SQLite: an flock on a file beside the store).
class JobLock {
 public:
  virtual ~JobLock() = default;
};

// ---------------------------------------------------------------- the store

class Store {
 public:
  virtual ~Store() = default;

  // Thread-safe. Waits for other writers (in this process, and for the busy timeout in
  // others).
  virtual Result<std::unique_ptr<WriteTransaction>> begin_write() = 0;

  // Everything below is thread-safe and reads committed data only.
  virtual Result<std::vector<ReportSummary>> list_reports(const ReportFilter& filter) = 0;
  // NotFound when there is no such report.
  virtual Result<StoredReport> get_report(std::int64_t id) = 0;
  virtual Result<std::vector<RawMessageInfo>> list_raw_messages(const RawFilter& filter) = 0;
  virtual Result<RawMessageInfo> get_raw_message(std::int64_t id) = 0;
  // Decompresses a stored raw message, handing it to `out` in pieces, in order. `out`
  // returning an error stops the read with that error.
  virtual Status read_raw(std::int64_t id,
                          const std::function<Status(std::span<const char>)>& out) = 0;
  virtual Result<Summary> summary(std::size_t top_orgs = 10) = 0;

  // Retention, in one transaction, of everything older than `before`: reports and raw
  // messages received before it; the milter's evaluation rows and the collector's TLS counts
  // of hours/days that began before it (reported or not: serve was down for longer than the
  // retention) and rejected datagrams; outbox entries sent or failed before it; aggregate
  // reports built before it with no delivery still queued; bounce counts of destinations that
  // are not suppressed and last bounced before it (suppressions stay until removed).
  virtual Result<PurgeResult> purge(std::int64_t before) = 0;

  // Adds a batch of the milter's evaluations to their aggregated rows (see EvaluationRow), in
  // one transaction: all or nothing. Evaluations without a DMARC record with rua= are
  // skipped. Thread-safe; waits for other writers like begin_write().
  //
  // In the same transaction, each evaluation's failure_reports are queued in the outbox, one
  // entry per request, unless the recipient's rate limit for that kind (request.limit_count per
  // fixed window of limit_period, windows aligned to the epoch, by the evaluation's time) is
  // used up; the counters live in the store, so restarts do not reset them. Failure reports are
  // queued also when the evaluation's record has no rua=.
  virtual Status record_evaluations(std::span<const auth::Evaluation> batch) = 0;
  // The same, saying how many evaluations went into rows and how many failure reports were
  // queued or refused by their rate limit.
  virtual Result<RecordStats> record_evaluations_counted(
      std::span<const auth::Evaluation> batch) = 0;
  // The aggregated rows, newest hour first, then by policy domain.
  virtual Result<std::vector<EvaluationRow>> list_evaluations(const EvaluationFilter& filter) = 0;

  // The outbox. Entries are claimed by mailreport serve: claim_outbox returns up to `limit`
  // queued entries due at `now` (next_attempt_at <= now), oldest first, with payload, and moves
  // their next_attempt_at to now + lease_seconds (so a crashed sender's claim expires and
  // another pass takes them; one claimant per entry at a time).
  // Queues an entry (state, attempts and finished_at are ignored; next_attempt_at 0 means
  // created_at). Returns its id.
  virtual Result<std::int64_t> enqueue_outbox(const OutboxEntry& entry) = 0;
  virtual Result<std::vector<OutboxEntry>> claim_outbox(std::int64_t now, std::size_t limit,
                                                        std::int64_t lease_seconds) = 0;
  // The outcomes, each for a queued entry (NotFound otherwise); each counts an attempt.
  virtual Status outbox_sent(std::int64_t id, std::int64_t now, std::string_view message_id) = 0;
  // A temporary failure: attempts + 1, retried at next_attempt_at.
  virtual Status outbox_retry(std::int64_t id, std::int64_t next_attempt_at,
                              std::string_view error) = 0;
  virtual Status outbox_failed(std::int64_t id, std::int64_t now, std::string_view error) = 0;
  // Entries oldest first (by id).
  virtual Result<std::vector<OutboxEntry>> list_outbox(const OutboxFilter& filter) = 0;
  // The outbox entry sent with this Message-ID (with or without angle brackets); NotFound.
  virtual Result<OutboxEntry> find_outbox_by_message_id(std::string_view message_id) = 0;

  // ----- aggregate reports we send (see "aggregate reports we send" above)

  // The end of the last interval of `kind` built (nullopt: none yet).
  virtual Result<std::optional<std::int64_t>> aggregate_watermark(std::string_view kind) = 0;
  // Evaluation rows with unreported messages (count > reported) whose hour begins before
  // `end`, of `domain` only when not empty, ordered by policy domain, then published policy,
  // then hour and id; record.row.count is the unreported part. Read from one snapshot.
  // `fn` returning false stops the walk (not an error).
  virtual Status for_each_unreported_evaluation(
      std::int64_t end, std::string_view domain,
      const std::function<bool(const EvaluationRow&)>& fn) = 0;
  // The same for the TLS counts: rows of days before `end` with unreported sessions, ordered
  // by recipient domain then record, day and id; counts are the unreported parts, failure
  // details with nothing unreported left out.
  virtual Status for_each_unreported_tls(std::int64_t end, std::string_view domain,
                                         const std::function<bool(const TlsPolicyCount&)>& fn) = 0;
  // Commits a builder's batch (all or nothing); returns the new reports' ids in batch order.
  // Conflict when expect_watermark does not hold; Invalid when a reported count is
  // larger than what is recorded.
  virtual Result<std::vector<std::int64_t>> commit_aggregate_batch(const AggregateBatch& batch) = 0;
  // NotFound when there is no such report.
  virtual Result<AggregateReport> get_aggregate_report(std::int64_t id) = 0;
  virtual Result<std::vector<AggregateReport>> list_aggregate_reports(
      const AggregateReportFilter& filter) = 0;

  // ----- TLS results from the MTA (the collector in mailreport serve)

  // Adds datagrams received at `received_at` to the counts of that UTC day, in one
  // transaction.
  virtual Status record_tls_results(std::span<const report::TlsrptDatagram> batch,
                                    std::int64_t received_at) = 0;
  // Keeps a datagram that could not be parsed, with the reason (for `mailreport list` and
  // debugging); at most the newest 1000 are kept.
  virtual Status record_tls_rejected(std::string_view datagram, std::string_view reason,
                                     std::int64_t received_at) = 0;
  virtual Result<std::vector<TlsPolicyCount>> list_tls_counts(std::int64_t since,
                                                              std::string_view domain) = 0;

  // ----- bounces and suppressions of our report destinations

  // A DSN for a report we sent, matched by the Message-ID of the returned message: counts a
  // failure against the entry's recipient and suppresses it at `threshold` failures (0: never).
  // NotFound when no outbox entry was sent with that Message-ID.
  virtual Result<BounceOutcome> record_report_bounce(std::string_view message_id,
                                                     std::string_view reason, std::int64_t now,
                                                     unsigned threshold) = 0;
  // Whether nothing may be sent to `address` (case-insensitive).
  virtual Result<bool> is_suppressed(std::string_view address) = 0;
  virtual Status add_suppression(std::string_view address, std::string_view reason,
                                 std::int64_t now) = 0;
  // Forgets the address entirely (its failures too); NotFound when unknown.
  virtual Status remove_suppression(std::string_view address) = 0;
  // Every address with failures or suppressed, by address.
  virtual Result<std::vector<Suppression>> list_suppressions() = 0;

  // ----- dashboard queries (issue 6; see "dashboard queries" above)

  virtual Result<ReportPage> query_reports(const ReportQuery& query) = 0;
  virtual Result<std::vector<DmarcDayPoint>> dmarc_daily(const SeriesQuery& query) = 0;
  virtual Result<std::vector<SourceStat>> top_failing_sources(const SeriesQuery& query,
                                                              std::size_t limit) = 0;
  // Whether a DMARC aggregate report stored before report `before_id` (a smaller id) for
  // `domain` has a record from `source_ip` (the alert scanner's "new source").
  virtual Result<bool> dmarc_source_known(std::string_view domain, std::string_view source_ip,
                                          std::int64_t before_id) = 0;
  virtual Result<std::vector<TlsDayPoint>> tls_daily(const SeriesQuery& query) = 0;
  virtual Result<std::vector<TlsFailureStat>> tls_failures_by_type(const SeriesQuery& query) = 0;
  virtual Result<std::vector<OutboxStat>> outbox_stats() = 0;
  virtual Result<std::vector<EvaluationStat>> evaluation_summary(const SeriesQuery& query) = 0;

  // ----- warnings and webhooks (issue 6)

  // A watermark of the alert scanner (nullopt: never set).
  virtual Result<std::optional<std::int64_t>> alert_watermark(std::string_view name) = 0;
  // All or nothing; Conflict when an `expect` does not hold.
  virtual Status commit_alerts(const AlertBatch& batch) = 0;
  // Up to `limit` events of `webhook` due at `now`, oldest first, their next_attempt_at moved
  // to now + lease_seconds (one claimant at a time, as claim_outbox).
  virtual Result<std::vector<WebhookEvent>> claim_webhook_events(std::string_view webhook,
                                                                 std::int64_t now,
                                                                 std::size_t limit,
                                                                 std::int64_t lease_seconds) = 0;
  // Delivered: the events are deleted.
  virtual Status webhook_delivered(std::span<const std::int64_t> ids) = 0;
  // Not delivered: attempts + 1, next try at `next_attempt_at`.
  virtual Status webhook_retry(std::span<const std::int64_t> ids, std::int64_t next_attempt_at,
                               std::string_view error) = 0;
  // Drops the events of `webhook` created before `created_before` (discard-after; a webhook no
  // longer configured: everything). Returns how many were dropped.
  virtual Result<std::uint64_t> discard_webhook_events(std::string_view webhook,
                                                       std::int64_t created_before) = 0;
  // Pending events per webhook id (for /metrics and the dashboard).
  virtual Result<std::vector<std::pair<std::string, std::uint64_t>>> webhook_queue_depths() = 0;
  // Every pending event of `webhook` ("" = all), oldest first (CLI, tests).
  virtual Result<std::vector<WebhookEvent>> list_webhook_events(std::string_view webhook) = 0;

  // ----- metrics (issue 6)

  // Adds counter deltas to (node, name, labels) and sets gauges, in one transaction.
  virtual Status add_metrics(std::span<const MetricValue> values, std::int64_t now) = 0;
  virtual Result<std::vector<MetricValue>> list_metrics() = 0;

  // ----- cluster

  // Takes the lock of job `name` unless another process (or another caller in this one) holds
  // it: a null pointer then, not an error. Correctness never rests on it (commits are
  // compare-and-set); it keeps several nodes from doing the same work at once.
  virtual Result<std::unique_ptr<JobLock>> try_lock_job(std::string_view name) = 0;
};

// A stored raw message as an Input for the extractor: in memory up to `memory_limit` bytes,
// else in an unnamed temporary file in `temp_dir` (never the whole message in memory).
// Checks the size and SHA-256 against what was stored.
Result<Input> load_raw_input(Store& store, const RawMessageInfo& info,
                             const std::filesystem::path& temp_dir,
                             std::uint64_t memory_limit = 8ull << 20);

}  // namespace mailreport::store
