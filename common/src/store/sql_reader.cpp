// Reading reports back from the store: list rows (ReportSummary) and whole report
// models, rebuilt from the normalised tables so that `show --json` renders exactly what
// `parse` would have rendered for the same input.
#include <unordered_map>

#include "store/json_columns.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

// Per-type figures come from correlated subqueries that only run for their own type (CASE is
// evaluated lazily), each one an index seek.
const char* const kSummarySelect =
    "SELECT r.id, coalesce(r.message_id, 0), r.type, r.org_name, r.report_id, r.policy_domain,"
    " r.date_begin, r.date_end, r.received_at, r.errors,"
    " CASE WHEN r.type = 'dmarc-aggregate' THEN"
    "  (SELECT coalesce(sum(count), 0) FROM dmarc_records WHERE report_id = r.id) ELSE 0 END,"
    " CASE WHEN r.type = 'dmarc-aggregate' THEN"
    "  (SELECT coalesce(sum(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN count ELSE 0 END), 0)"
    "   FROM dmarc_records WHERE report_id = r.id) ELSE 0 END,"
    " CASE WHEN r.type = 'tls-aggregate' THEN"
    "  (SELECT coalesce(sum(success_count), 0) FROM tls_policies WHERE report_id = r.id)"
    "  ELSE 0 END,"
    " CASE WHEN r.type = 'tls-aggregate' THEN"
    "  (SELECT coalesce(sum(failure_count), 0) FROM tls_policies WHERE report_id = r.id)"
    "  ELSE 0 END,"
    " coalesce(a.feedback_type, ''), coalesce(a.source_ip, ''),"
    " coalesce(d.action, ''), coalesce(d.status, ''), coalesce(d.final_recipient, '')"
    " FROM reports r"
    " LEFT JOIN arf_reports a ON a.report_id = r.id"
    " LEFT JOIN dsn_recipients d ON r.type = 'dsn' AND d.id ="
    "  (SELECT min(id) FROM dsn_recipients WHERE report_id = r.id)";

namespace {

std::optional<report::ReportType> type_from_string(std::string_view s) {
  for (auto t : {report::ReportType::DmarcAggregate, report::ReportType::TlsAggregate,
                 report::ReportType::Arf, report::ReportType::Dsn}) {
    if (s == report::to_string(t)) return t;
  }
  return std::nullopt;
}

Status read_dmarc(Connection& db, std::int64_t id, const ReportSummary& s,
                  report::DmarcAggregate& out) {
  auto& h = out.header;
  h.report_metadata.org_name = s.org_name;
  h.report_metadata.report_id = s.report_id;
  h.report_metadata.date_range = {s.date_begin, s.date_end};
  {
    auto q = db.query(
        "SELECT version, namespace, email, extra_contact_info, generator, reporter_errors,"
        " domain, discovery_method, adkim, aspf, p, sp, np, pct, fo, testing"
        " FROM dmarc_reports WHERE report_id = ?1");
    if (!q) return std::move(q).error();
    q->bind(1, id);
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (*row) {
      h.version = q->text(0);
      h.xml_namespace = q->text(1);
      h.report_metadata.email = q->text(2);
      h.report_metadata.extra_contact_info = q->text(3);
      h.report_metadata.generator = q->text(4);
      h.report_metadata.error = strings_from_json(q->text(5));
      auto& pp = h.policy_published;
      pp.domain = q->text(6);
      pp.discovery_method = q->text(7);
      pp.adkim = q->text(8);
      pp.aspf = q->text(9);
      pp.p = q->text(10);
      pp.sp = q->text(11);
      pp.np = q->text(12);
      if (auto pct = q->opt_i64(13)) pp.pct = static_cast<int>(*pct);
      pp.fo = q->text(14);
      pp.testing = q->text(15);
    }
  }
  auto q = db.query(
      "SELECT id, source_ip, count, disposition, dkim, spf, reasons, header_from,"
      " envelope_from, envelope_to, dkim_results, spf_results FROM dmarc_records"
      " WHERE report_id = ?1 ORDER BY id");
  if (!q) return std::move(q).error();
  q->bind(1, id);
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    report::DmarcRecord r;
    r.row.source_ip = q->text(1);
    r.row.count = q->u64(2);
    r.row.policy_evaluated.disposition = q->text(3);
    r.row.policy_evaluated.dkim = q->text(4);
    r.row.policy_evaluated.spf = q->text(5);
    r.row.policy_evaluated.reason = reasons_from_json(q->text(6));
    r.identifiers.header_from = q->text(7);
    r.identifiers.envelope_from = q->text(8);
    r.identifiers.envelope_to = q->text(9);
    r.auth_results.dkim = dkim_auth_from_json(q->text(10));
    r.auth_results.spf = spf_auth_from_json(q->text(11));
    out.records.push_back(std::move(r));
  }
  return {};
}

Status read_tls(Connection& db, std::int64_t id, const ReportSummary& s, report::TlsReport& out) {
  out.organization_name = s.org_name;
  out.report_id = s.report_id;
  out.date_range = {s.date_begin, s.date_end};
  {
    auto q = db.query("SELECT contact_info FROM tls_reports WHERE report_id = ?1");
    if (!q) return std::move(q).error();
    q->bind(1, id);
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (*row) out.contact_info = q->text(0);
  }
  std::unordered_map<std::int64_t, std::size_t> index;
  {
    auto q = db.query(
        "SELECT id, policy_type, policy_domain, policy_string, mx_host, success_count,"
        " failure_count FROM tls_policies WHERE report_id = ?1 ORDER BY id");
    if (!q) return std::move(q).error();
    q->bind(1, id);
    for (;;) {
      auto row = q->step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      report::TlsPolicy p;
      p.policy_type = q->text(1);
      p.policy_domain = q->text(2);
      p.policy_string = strings_from_json(q->text(3));
      p.mx_host = strings_from_json(q->text(4));
      p.total_successful_session_count = q->u64(5);
      p.total_failure_session_count = q->u64(6);
      index.emplace(q->i64(0), out.policies.size());
      out.policies.push_back(std::move(p));
    }
  }
  auto q = db.query(
      "SELECT f.policy_id, f.result_type, f.sending_mta_ip, f.receiving_mx_hostname,"
      " f.receiving_mx_helo, f.receiving_ip, f.failed_session_count, f.additional_information,"
      " f.failure_reason_code FROM tls_failures f JOIN tls_policies p ON p.id = f.policy_id"
      " WHERE p.report_id = ?1 ORDER BY f.id");
  if (!q) return std::move(q).error();
  q->bind(1, id);
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    auto it = index.find(q->i64(0));
    if (it == index.end()) continue;
    report::TlsFailureDetail f;
    f.result_type = q->text(1);
    f.sending_mta_ip = q->text(2);
    f.receiving_mx_hostname = q->text(3);
    f.receiving_mx_helo = q->text(4);
    f.receiving_ip = q->text(5);
    f.failed_session_count = q->u64(6);
    f.additional_information = q->text(7);
    f.failure_reason_code = q->text(8);
    out.policies[it->second].failure_details.push_back(std::move(f));
  }
  return {};
}

Status read_arf(Connection& db, std::int64_t id, report::ArfReport& a) {
  auto q = db.query(
      "SELECT feedback_type, auth_failure, source_ip, arrival_date, arrival_date_raw,"
      " reported_domain, reported_uri, original_mail_from, original_rcpt_to, user_agent,"
      " version, reporting_mta, delivery_result, authentication_results, dkim_domain,"
      " dkim_identity, dkim_selector, dkim_canonicalized_header, dkim_canonicalized_body,"
      " spf_dns, identity_alignment, incidents, fields, original_headers, original_message_type,"
      " human_readable, subject, from_header, message_id_header"
      " FROM arf_reports WHERE report_id = ?1");
  if (!q) return std::move(q).error();
  q->bind(1, id);
  auto row = q->step();
  if (!row) return std::move(row).error();
  if (!*row) return {};
  a.feedback_type = q->text(0);
  a.auth_failure = q->text(1);
  a.source_ip = q->text(2);
  a.arrival_date = q->opt_i64(3);
  a.arrival_date_raw = q->text(4);
  a.reported_domain = strings_from_json(q->text(5));
  a.reported_uri = strings_from_json(q->text(6));
  a.original_mail_from = q->text(7);
  a.original_rcpt_to = strings_from_json(q->text(8));
  a.user_agent = q->text(9);
  a.version = q->text(10);
  a.reporting_mta = q->text(11);
  a.delivery_result = q->text(12);
  a.authentication_results = q->text(13);
  a.dkim_domain = q->text(14);
  a.dkim_identity = q->text(15);
  a.dkim_selector = q->text(16);
  a.dkim_canonicalized_header = q->text(17);
  a.dkim_canonicalized_body = q->text(18);
  a.spf_dns = q->text(19);
  a.identity_alignment = q->text(20);
  if (auto n = q->opt_i64(21)) a.incidents = static_cast<std::uint64_t>(*n);
  a.fields = fields_from_json(q->text(22));
  a.original_headers = fields_from_json(q->text(23));
  a.original_message_type = q->text(24);
  a.human_readable = q->text(25);
  a.subject = q->text(26);
  a.from = q->text(27);
  a.message_id = q->text(28);
  return {};
}

Status read_dsn(Connection& db, std::int64_t id, report::DsnReport& d) {
  {
    auto q = db.query(
        "SELECT original_envelope_id, reporting_mta, dsn_gateway, received_from_mta,"
        " arrival_date, fields, original_headers, subject, from_header, message_id_header"
        " FROM dsn_reports WHERE report_id = ?1");
    if (!q) return std::move(q).error();
    q->bind(1, id);
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (*row) {
      d.original_envelope_id = q->text(0);
      d.reporting_mta = q->text(1);
      d.dsn_gateway = q->text(2);
      d.received_from_mta = q->text(3);
      d.arrival_date = q->opt_i64(4);
      d.fields = fields_from_json(q->text(5));
      d.original_headers = fields_from_json(q->text(6));
      d.subject = q->text(7);
      d.from = q->text(8);
      d.message_id = q->text(9);
    }
  }
  auto q = db.query(
      "SELECT original_recipient, final_recipient, action, status, remote_mta, diagnostic_code,"
      " last_attempt_date, final_log_id, will_retry_until, fields"
      " FROM dsn_recipients WHERE report_id = ?1 ORDER BY id");
  if (!q) return std::move(q).error();
  q->bind(1, id);
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    report::DsnRecipient r;
    r.original_recipient = q->text(0);
    r.final_recipient = q->text(1);
    r.action = q->text(2);
    r.status = q->text(3);
    r.remote_mta = q->text(4);
    r.diagnostic_code = q->text(5);
    r.last_attempt_date = q->opt_i64(6);
    r.final_log_id = q->text(7);
    r.will_retry_until = q->opt_i64(8);
    r.fields = fields_from_json(q->text(9));
    d.recipients.push_back(std::move(r));
  }
  return {};
}

}  // namespace

ReportSummary summary_from_row(const Query& q) {
  ReportSummary s;
  s.id = q.i64(0);
  s.message_id = q.i64(1);
  s.type = type_from_string(q.text(2)).value_or(report::ReportType::DmarcAggregate);
  s.org_name = q.text(3);
  s.report_id = q.text(4);
  s.policy_domain = q.text(5);
  s.date_begin = q.i64(6);
  s.date_end = q.i64(7);
  s.received_at = q.i64(8);
  s.error_count = strings_from_json(q.text(9)).size();
  s.messages = q.u64(10);
  s.pass = q.u64(11);
  s.fail = s.messages - std::min(s.pass, s.messages);
  s.sessions_ok = q.u64(12);
  s.sessions_failed = q.u64(13);
  s.feedback_type = q.text(14);
  s.source_ip = q.text(15);
  s.action = q.text(16);
  s.status = q.text(17);
  s.recipient = q.text(18);
  return s;
}

Result<StoredReport> read_report(Connection& db, std::int64_t id) {
  ReadTx tx(db);
  if (!tx.status()) return tx.status().error();
  ReportSummary s;
  std::vector<std::string> errors;
  {
    auto q = db.query(std::string(kSummarySelect) + " WHERE r.id = ?1");
    if (!q) return std::move(q).error();
    q->bind(1, id);
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return make_error(ErrorCode::NotFound, "no report with id " + std::to_string(id));
    s = summary_from_row(*q);
    errors = strings_from_json(q->text(9));
  }
  StoredReport out{s, report::DmarcAggregate{}};
  Status st;
  switch (s.type) {
    case report::ReportType::DmarcAggregate: {
      report::DmarcAggregate m;
      st = read_dmarc(db, id, s, m);
      m.errors = std::move(errors);
      out.report = std::move(m);
      break;
    }
    case report::ReportType::TlsAggregate: {
      report::TlsReport m;
      st = read_tls(db, id, s, m);
      m.errors = std::move(errors);
      out.report = std::move(m);
      break;
    }
    case report::ReportType::Arf: {
      report::ArfReport m;
      st = read_arf(db, id, m);
      m.errors = std::move(errors);
      out.report = std::move(m);
      break;
    }
    case report::ReportType::Dsn: {
      report::DsnReport m;
      st = read_dsn(db, id, m);
      m.errors = std::move(errors);
      out.report = std::move(m);
      break;
    }
  }
  if (!st) return st.error();
  return out;
}

}  // namespace mailreport::store::sql
