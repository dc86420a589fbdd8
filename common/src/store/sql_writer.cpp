// The streaming ReportWriter of the store: reports are written row by row as the
// extractor delivers them, inside the message's transaction, each in its own SAVEPOINT so that
// one bad report is rolled back alone.
//
// DMARC aggregate reports arrive as dmarc_begin / dmarc_record... / dmarc_end. The duplicate
// check is made at dmarc_begin (RFC 9990 §3.5.4: a re-sent report keeps its identifiers); a
// duplicate's records are ignored. dmarc_end carries the final header, which updates the row;
// should the final key collide with a stored report, the report is a duplicate after all.
//
// A stored DMARC report whose input ended early (reports.complete = 0) is not a reason to drop
// a later copy: the later copy replaces it, inside the same savepoint, unless it is itself
// incomplete and holds fewer records (then the savepoint is rolled back and the first copy
// stays).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/json_columns.hpp"
#include "store/report_keys.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

using report::ReportType;

constexpr const char* kInsertReport =
    "INSERT INTO reports (message_id, type, org_name, report_id, policy_domain, date_begin,"
    " date_end, received_at, errors) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id";
constexpr const char* kUpdateReport =
    "UPDATE reports SET org_name = ?2, report_id = ?3, policy_domain = ?4, date_begin = ?5,"
    " date_end = ?6, errors = ?7, complete = ?8 WHERE id = ?1";
constexpr const char* kFindReport =
    "SELECT id, complete FROM reports WHERE type = ?1 AND org_name = ?2 AND report_id = ?3"
    " AND policy_domain = ?4";
constexpr const char* kCountDmarcRecords =
    "SELECT count(*) FROM dmarc_records WHERE report_id = ?1";
constexpr const char* kDeleteReport = "DELETE FROM reports WHERE id = ?1";
constexpr const char* kInsertDmarcHeader =
    "INSERT INTO dmarc_reports (report_id, version, namespace, email, extra_contact_info,"
    " generator, reporter_errors, domain, discovery_method, adkim, aspf, p, sp, np, pct, fo,"
    " testing) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
constexpr const char* kUpdateDmarcHeader =
    "UPDATE dmarc_reports SET version = ?2, namespace = ?3, email = ?4, extra_contact_info = ?5,"
    " generator = ?6, reporter_errors = ?7, domain = ?8, discovery_method = ?9, adkim = ?10,"
    " aspf = ?11, p = ?12, sp = ?13, np = ?14, pct = ?15, fo = ?16, testing = ?17"
    " WHERE report_id = ?1";
constexpr const char* kInsertDmarcRecord =
    "INSERT INTO dmarc_records (report_id, source_ip, count, disposition, dkim, spf, reasons,"
    " header_from, envelope_from, envelope_to, dkim_results, spf_results)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kInsertTlsReport =
    "INSERT INTO tls_reports (report_id, contact_info) VALUES (?1, ?2)";
constexpr const char* kInsertTlsPolicy =
    "INSERT INTO tls_policies (report_id, policy_type, policy_domain, policy_string, mx_host,"
    " success_count, failure_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id";
constexpr const char* kInsertTlsFailure =
    "INSERT INTO tls_failures (policy_id, result_type, sending_mta_ip, receiving_mx_hostname,"
    " receiving_mx_helo, receiving_ip, failed_session_count, additional_information,"
    " failure_reason_code) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kInsertArf =
    "INSERT INTO arf_reports (report_id, feedback_type, auth_failure, source_ip, arrival_date,"
    " arrival_date_raw, reported_domain, reported_uri, original_mail_from, original_rcpt_to,"
    " user_agent, version, reporting_mta, delivery_result, authentication_results, dkim_domain,"
    " dkim_identity, dkim_selector, dkim_canonicalized_header, dkim_canonicalized_body, spf_dns,"
    " identity_alignment, incidents, fields, original_headers, original_message_type,"
    " human_readable, subject, from_header, message_id_header) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24,"
    " ?25, ?26, ?27, ?28, ?29, ?30)";
constexpr const char* kInsertDsn =
    "INSERT INTO dsn_reports (report_id, original_envelope_id, reporting_mta, dsn_gateway,"
    " received_from_mta, arrival_date, fields, original_headers, subject, from_header,"
    " message_id_header) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr const char* kInsertDsnRecipient =
    "INSERT INTO dsn_recipients (report_id, original_recipient, final_recipient, action, status,"
    " remote_mta, diagnostic_code, last_attempt_date, final_log_id, will_retry_until, fields)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

void bind_dmarc_header(Query& q, std::int64_t id, const report::DmarcHeader& h) {
  const auto& md = h.report_metadata;
  const auto& pp = h.policy_published;
  q.bind(1, id)
      .bind(2, h.version)
      .bind(3, h.xml_namespace)
      .bind(4, md.email)
      .bind(5, md.extra_contact_info)
      .bind(6, md.generator)
      .bind(7, strings_to_json(md.error))
      .bind(8, pp.domain)
      .bind(9, pp.discovery_method)
      .bind(10, pp.adkim)
      .bind(11, pp.aspf)
      .bind(12, pp.p)
      .bind(13, pp.sp)
      .bind(14, pp.np)
      .bind(15, pp.pct)
      .bind(16, pp.fo)
      .bind(17, pp.testing);
}

std::string label_of(ReportType type, const ReportKey& key) {
  return std::string(report::to_string(type)) + " report " + key.report_id + " from " +
         key.org_name + " for " + key.policy_domain;
}

// The parser's notes, plus one saying so when the report id was derived (report_keys.hpp).
// And one saying that the report replaced an incomplete copy stored earlier.
std::vector<std::string> with_id_note(const std::vector<std::string>& errors,
                                      std::string_view sent_id, const ReportKey& key,
                                      bool replaced_incomplete = false) {
  std::vector<std::string> out = errors;
  if (replaced_incomplete) {
    out.push_back("replaces an incomplete copy of this report received earlier");
  }
  if (sent_id.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos) {
    out.push_back(missing_report_id_note(key.report_id));
  }
  return out;
}

class SqlReportWriter final : public ReportWriter {
 public:
  SqlReportWriter(Connection& db, std::int64_t message_id, std::int64_t received_at)
      : db_(db), message_id_(message_id), received_at_(received_at) {}

  ~SqlReportWriter() override {
    // A report left open must not be committed with the message.
    if (savepoint_open_) (void)rollback_savepoint();
  }

  Status dmarc_begin(const report::DmarcHeader& header) override;
  Status dmarc_record(report::DmarcRecord&& record) override;
  Status dmarc_end(const report::DmarcHeader& header,
                   const std::vector<std::string>& errors) override;
  Status tls(report::TlsReport&& report) override;
  Status arf(report::ArfReport&& report) override;
  Status dsn(report::DsnReport&& report) override;

  Status finish() override;
  std::size_t stored() const noexcept override { return stored_; }
  std::size_t duplicates() const noexcept override { return duplicates_; }
  const std::optional<Error>& store_error() const noexcept override { return store_error_; }
  const std::vector<std::string>& notes() const noexcept override { return notes_; }

 private:
  enum class State { Idle, Dmarc, DmarcIgnored };

  // Closes a DMARC report the parser abandoned (no dmarc_end): it is rolled back.
  Status close_abandoned();
  struct Existing {
    std::int64_t id = 0;
    bool complete = true;
  };
  // Looks the key up: the stored report with that key, if any.
  Result<std::optional<Existing>> find_report(ReportType type, const ReportKey& key);
  // Looks the key up; true when it is already stored.
  Result<bool> is_duplicate(ReportType type, const ReportKey& key);
  // Opens the savepoint, deletes the report it replaces (if any), and inserts the reports row;
  // returns its id.
  // After insert_report failed: true when it lost a race for the report's key (a duplicate,
  // the savepoint rolled back).
  bool lost_race();
  Result<std::int64_t> insert_report(ReportType type, const ReportKey& key,
                                     const std::vector<std::string>& errors,
                                     std::int64_t replaces = 0);
  // Stores one whole (non-streamed) report.
  template <class Body>
  Status store_whole(ReportType type, const ReportKey& key, const std::vector<std::string>& errors,
                     Body&& body);
  Status release_savepoint();
  Status rollback_savepoint();
  // Decides what a failed statement means: a data error drops the current report (noted),
  // anything else is a store error that fails the whole message.
  Status on_error(Error e);

  Connection& db_;
  std::int64_t message_id_;
  std::int64_t received_at_;
  State state_ = State::Idle;
  std::int64_t current_id_ = 0;
  std::string current_label_;
  // The incomplete stored copy the current DMARC report replaces, and its record count.
  std::int64_t replaces_id_ = 0;
  std::int64_t replaces_records_ = 0;
  std::int64_t current_records_ = 0;
  bool savepoint_open_ = false;
  std::size_t stored_ = 0;
  std::size_t duplicates_ = 0;
  std::optional<Error> store_error_;
  std::vector<std::string> notes_;
};

Status SqlReportWriter::release_savepoint() {
  savepoint_open_ = false;
  return db_.exec("RELEASE report");
}

Status SqlReportWriter::rollback_savepoint() {
  savepoint_open_ = false;
  if (auto st = db_.exec("ROLLBACK TO report"); !st) return st;
  return db_.exec("RELEASE report");
}

Status SqlReportWriter::on_error(Error e) {
  if (savepoint_open_ && db_.last_error_is_data()) {
    if (auto st = rollback_savepoint(); !st) {
      store_error_ = st.error();
      return st;
    }
    notes_.push_back(current_label_ + ": not stored: " + e.message);
    if (state_ == State::Dmarc) state_ = State::DmarcIgnored;  // skip its remaining records
    return {};
  }
  store_error_ = e;
  return e;
}

Status SqlReportWriter::close_abandoned() {
  if (state_ == State::Dmarc && savepoint_open_) {
    if (auto st = rollback_savepoint(); !st) {
      store_error_ = st.error();
      return st;
    }
    notes_.push_back(current_label_ + ": incomplete, not stored");
  }
  state_ = State::Idle;
  return {};
}

Result<std::optional<SqlReportWriter::Existing>> SqlReportWriter::find_report(
    ReportType type, const ReportKey& key) {
  auto q = db_.query(kFindReport);
  if (!q) return std::move(q).error();
  q->bind(1, report::to_string(type))
      .bind(2, key.org_name)
      .bind(3, key.report_id)
      .bind(4, key.policy_domain);
  auto row = q->step();
  if (!row) return std::move(row).error();
  if (!*row) return std::optional<Existing>();
  return std::optional<Existing>(Existing{q->i64(0), q->i64(1) != 0});
}

Result<bool> SqlReportWriter::is_duplicate(ReportType type, const ReportKey& key) {
  auto found = find_report(type, key);
  if (!found) return std::move(found).error();
  return found->has_value();
}

bool SqlReportWriter::lost_race() {
  // The key was free when looked up, and is taken now: another receiver (an LMTP node of the
  // cluster, PostgreSQL) stored the same report meanwhile. Its copy counts; ours is a duplicate.
  if (!savepoint_open_ || db_.last_error() != ErrorClass::Unique) return false;
  if (auto st = rollback_savepoint(); !st) {
    store_error_ = st.error();
    return false;
  }
  ++duplicates_;
  return true;
}

Result<std::int64_t> SqlReportWriter::insert_report(ReportType type, const ReportKey& key,
                                                    const std::vector<std::string>& errors,
                                                    std::int64_t replaces) {
  current_label_ = label_of(type, key);
  if (auto st = db_.exec("SAVEPOINT report"); !st) return std::move(st).error();
  savepoint_open_ = true;
  if (replaces != 0) {
    auto d = db_.query(kDeleteReport);
    if (!d) return std::move(d).error();
    d->bind(1, replaces);
    if (auto st = d->run(); !st) return std::move(st).error();
  }
  auto q = db_.query(kInsertReport);
  if (!q) return std::move(q).error();
  q->bind(1, message_id_)
      .bind(2, report::to_string(type))
      .bind(3, key.org_name)
      .bind(4, key.report_id)
      .bind(5, key.policy_domain)
      .bind(6, key.date_begin)
      .bind(7, key.date_end)
      .bind(8, received_at_)
      .bind(9, strings_to_json(errors));
  auto row = q->step();
  if (!row) return std::move(row).error();
  std::int64_t id = q->i64(0);
  if (auto st = q->run(); !st) return std::move(st).error();
  return id;
}

template <class Body>
Status SqlReportWriter::store_whole(ReportType type, const ReportKey& key,
                                    const std::vector<std::string>& errors, Body&& body) {
  if (store_error_) return *store_error_;
  if (auto st = close_abandoned(); !st) return st;
  auto dup = is_duplicate(type, key);
  if (!dup) return on_error(std::move(dup).error());
  if (*dup) {
    ++duplicates_;
    return {};
  }
  auto id = insert_report(type, key, errors);
  if (!id) return lost_race() ? Status{} : on_error(std::move(id).error());
  if (auto st = body(*id); !st) return on_error(std::move(st).error());
  if (auto st = release_savepoint(); !st) return on_error(std::move(st).error());
  ++stored_;
  return {};
}

Status SqlReportWriter::dmarc_begin(const report::DmarcHeader& header) {
  if (store_error_) return *store_error_;
  if (auto st = close_abandoned(); !st) return st;
  ReportKey key = key_of(header);
  auto found = find_report(ReportType::DmarcAggregate, key);
  if (!found) return on_error(std::move(found).error());
  replaces_id_ = 0;
  replaces_records_ = 0;
  current_records_ = 0;
  if (found->has_value()) {
    if ((*found)->complete) {
      ++duplicates_;
      state_ = State::DmarcIgnored;
      return {};
    }
    // The stored copy was cut short: this one replaces it (see the file comment).
    replaces_id_ = (*found)->id;
    auto c = db_.query(kCountDmarcRecords);
    if (!c) return on_error(std::move(c).error());
    c->bind(1, replaces_id_);
    auto row = c->step();
    if (!row) return on_error(std::move(row).error());
    replaces_records_ = c->i64(0);
  }
  state_ = State::Dmarc;
  auto id = insert_report(ReportType::DmarcAggregate, key, {}, replaces_id_);
  if (!id) {
    if (!lost_race()) return on_error(std::move(id).error());
    state_ = State::DmarcIgnored;
    return {};
  }
  current_id_ = *id;
  auto q = db_.query(kInsertDmarcHeader);
  if (!q) return on_error(std::move(q).error());
  bind_dmarc_header(*q, current_id_, header);
  if (auto st = q->run(); !st) return on_error(std::move(st).error());
  return {};
}

Status SqlReportWriter::dmarc_record(report::DmarcRecord&& record) {
  if (store_error_) return *store_error_;
  if (state_ == State::Idle) return make_error(ErrorCode::Invalid, "dmarc_record outside a report");
  if (state_ == State::DmarcIgnored) return {};
  const auto& row = record.row;
  auto q = db_.query(kInsertDmarcRecord);
  if (!q) return on_error(std::move(q).error());
  q->bind(1, current_id_)
      .bind(2, row.source_ip)
      .bind(3, row.count)
      .bind(4, row.policy_evaluated.disposition)
      .bind(5, row.policy_evaluated.dkim)
      .bind(6, row.policy_evaluated.spf)
      .bind(7, reasons_to_json(row.policy_evaluated.reason))
      .bind(8, record.identifiers.header_from)
      .bind(9, record.identifiers.envelope_from)
      .bind(10, record.identifiers.envelope_to)
      .bind(11, dkim_auth_to_json(record.auth_results.dkim))
      .bind(12, spf_auth_to_json(record.auth_results.spf));
  if (auto st = q->run(); !st) return on_error(std::move(st).error());
  ++current_records_;
  return {};
}

Status SqlReportWriter::dmarc_end(const report::DmarcHeader& header,
                                  const std::vector<std::string>& errors) {
  if (store_error_) return *store_error_;
  if (state_ == State::Idle) return make_error(ErrorCode::Invalid, "dmarc_end outside a report");
  if (state_ == State::DmarcIgnored) {
    state_ = State::Idle;
    return {};
  }
  state_ = State::Idle;
  if (replaces_id_ != 0 && !header.complete && current_records_ < replaces_records_) {
    // Both copies are incomplete and the stored one holds more: keep it.
    if (auto rb = rollback_savepoint(); !rb) {
      store_error_ = rb.error();
      return rb;
    }
    ++duplicates_;
    return {};
  }
  ReportKey key = key_of(header);
  auto q = db_.query(kUpdateReport);
  if (!q) return on_error(std::move(q).error());
  q->bind(1, current_id_)
      .bind(2, key.org_name)
      .bind(3, key.report_id)
      .bind(4, key.policy_domain)
      .bind(5, key.date_begin)
      .bind(6, key.date_end)
      .bind(7, strings_to_json(
                   with_id_note(errors, header.report_metadata.report_id, key, replaces_id_ != 0)))
      .bind(8, header.complete ? 1 : 0);
  if (auto st = q->run(); !st) {
    if (db_.last_error() == ErrorClass::Unique) {
      // The final header names a report that is already stored.
      if (auto rb = rollback_savepoint(); !rb) {
        store_error_ = rb.error();
        return rb;
      }
      ++duplicates_;
      return {};
    }
    return on_error(std::move(st).error());
  }
  auto h = db_.query(kUpdateDmarcHeader);
  if (!h) return on_error(std::move(h).error());
  bind_dmarc_header(*h, current_id_, header);
  if (auto st = h->run(); !st) return on_error(std::move(st).error());
  if (auto st = release_savepoint(); !st) return on_error(std::move(st).error());
  ++stored_;
  return {};
}

Status SqlReportWriter::tls(report::TlsReport&& report) {
  const ReportKey key = key_of(report);
  return store_whole(ReportType::TlsAggregate, key,
                     with_id_note(report.errors, report.report_id, key),
                     [&](std::int64_t id) -> Status {
                       auto r = db_.query(kInsertTlsReport);
                       if (!r) return std::move(r).error();
                       if (auto st = r->bind(1, id).bind(2, report.contact_info).run(); !st) {
                         return st;
                       }
                       for (const auto& p : report.policies) {
                         auto q = db_.query(kInsertTlsPolicy);
                         if (!q) return std::move(q).error();
                         q->bind(1, id)
                             .bind(2, p.policy_type)
                             .bind(3, p.policy_domain)
                             .bind(4, strings_to_json(p.policy_string))
                             .bind(5, strings_to_json(p.mx_host))
                             .bind(6, p.total_successful_session_count)
                             .bind(7, p.total_failure_session_count);
                         auto prow = q->step();
                         if (!prow) return std::move(prow).error();
                         std::int64_t policy_id = q->i64(0);
                         if (auto st = q->run(); !st) return st;
                         for (const auto& f : p.failure_details) {
                           auto fq = db_.query(kInsertTlsFailure);
                           if (!fq) return std::move(fq).error();
                           fq->bind(1, policy_id)
                               .bind(2, f.result_type)
                               .bind(3, f.sending_mta_ip)
                               .bind(4, f.receiving_mx_hostname)
                               .bind(5, f.receiving_mx_helo)
                               .bind(6, f.receiving_ip)
                               .bind(7, f.failed_session_count)
                               .bind(8, f.additional_information)
                               .bind(9, f.failure_reason_code);
                           if (auto st = fq->run(); !st) return st;
                         }
                       }
                       return {};
                     });
}

Status SqlReportWriter::arf(report::ArfReport&& a) {
  return store_whole(ReportType::Arf, key_of(a, received_at_), a.errors,
                     [&](std::int64_t id) -> Status {
                       auto q = db_.query(kInsertArf);
                       if (!q) return std::move(q).error();
                       q->bind(1, id)
                           .bind(2, a.feedback_type)
                           .bind(3, a.auth_failure)
                           .bind(4, a.source_ip)
                           .bind(5, a.arrival_date)
                           .bind(6, a.arrival_date_raw)
                           .bind(7, strings_to_json(a.reported_domain))
                           .bind(8, strings_to_json(a.reported_uri))
                           .bind(9, a.original_mail_from)
                           .bind(10, strings_to_json(a.original_rcpt_to))
                           .bind(11, a.user_agent)
                           .bind(12, a.version)
                           .bind(13, a.reporting_mta)
                           .bind(14, a.delivery_result)
                           .bind(15, a.authentication_results)
                           .bind(16, a.dkim_domain)
                           .bind(17, a.dkim_identity)
                           .bind(18, a.dkim_selector)
                           .bind(19, a.dkim_canonicalized_header)
                           .bind(20, a.dkim_canonicalized_body)
                           .bind(21, a.spf_dns)
                           .bind(22, a.identity_alignment)
                           .bind(23, a.incidents)
                           .bind(24, fields_to_json(a.fields))
                           .bind(25, fields_to_json(a.original_headers))
                           .bind(26, a.original_message_type)
                           .bind(27, a.human_readable)
                           .bind(28, a.subject)
                           .bind(29, a.from)
                           .bind(30, a.message_id);
                       return q->run();
                     });
}

Status SqlReportWriter::dsn(report::DsnReport&& d) {
  return store_whole(ReportType::Dsn, key_of(d, received_at_), d.errors,
                     [&](std::int64_t id) -> Status {
                       auto q = db_.query(kInsertDsn);
                       if (!q) return std::move(q).error();
                       q->bind(1, id)
                           .bind(2, d.original_envelope_id)
                           .bind(3, d.reporting_mta)
                           .bind(4, d.dsn_gateway)
                           .bind(5, d.received_from_mta)
                           .bind(6, d.arrival_date)
                           .bind(7, fields_to_json(d.fields))
                           .bind(8, fields_to_json(d.original_headers))
                           .bind(9, d.subject)
                           .bind(10, d.from)
                           .bind(11, d.message_id);
                       if (auto st = q->run(); !st) return st;
                       for (const auto& r : d.recipients) {
                         auto rq = db_.query(kInsertDsnRecipient);
                         if (!rq) return std::move(rq).error();
                         rq->bind(1, id)
                             .bind(2, r.original_recipient)
                             .bind(3, r.final_recipient)
                             .bind(4, r.action)
                             .bind(5, r.status)
                             .bind(6, r.remote_mta)
                             .bind(7, r.diagnostic_code)
                             .bind(8, r.last_attempt_date)
                             .bind(9, r.final_log_id)
                             .bind(10, r.will_retry_until)
                             .bind(11, fields_to_json(r.fields));
                         if (auto st = rq->run(); !st) return st;
                       }
                       return {};
                     });
}

Status SqlReportWriter::finish() {
  if (store_error_) return *store_error_;
  return close_abandoned();
}

}  // namespace

std::unique_ptr<ReportWriter> make_report_writer(Connection& db, std::int64_t message_id,
                                                 std::int64_t received_at) {
  return std::make_unique<SqlReportWriter>(db, message_id, received_at);
}

}  // namespace mailreport::store::sql
