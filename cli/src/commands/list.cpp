// mailreport list dmarc|tls|arf|dsn [--domain D] [--since DATE] [--limit N] [--json]: the
// stored reports of one type, newest period first, as a table or (--json) one JSON array.
// Columns: id, received, org, report id, domain, period, then per type: messages/pass/fail
// (DMARC: pass = aligned DKIM or SPF pass, RFC 7489 §3.1), sessions ok/failed (TLS),
// feedback type/source IP (ARF), action/status/recipient of the first recipient (DSN).
//
// mailreport list messages [--failed] [--since DATE] [--limit N] [--json]: the raw messages
// kept in the store, newest first — above all those that held no report (--failed), which are
// kept with the reason so that nothing received is lost: id, received, source, envelope
// sender, size, parse status and error. --since filters on the time received.
//
// mailreport list evaluations [--domain D] [--since DATE] [--limit N] [--json]: what the milter
// recorded for aggregate reports, one row per UTC hour, policy domain and identity (source IP,
// identifiers, results) with its message count, newest hour first. --domain is the policy
// domain; --since the hour. The JSON holds the whole row: the policy as published (with psd,
// rua, ruf) and the record in the aggregate report's shape (RFC 9990 §3.1.1).
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "commands/table.hpp"
#include "mailreport/report/json.hpp"

namespace mailreport::cli {

namespace {

struct ListOptions {
  std::string type;
  std::string domain;
  std::string since;
  std::size_t limit = 0;
  bool json = false;
  bool failed = false;  // messages only: the ones without a report
};

std::string period(const store::ReportSummary& s) {
  if (s.type == report::ReportType::Arf || s.type == report::ReportType::Dsn) {
    return format_minute(s.date_begin);
  }
  std::string b = format_date(s.date_begin);
  std::string e = format_date(s.date_end);
  return b == e ? b : b + ".." + e;
}

nlohmann::json row_json(const store::ReportSummary& s) {
  nlohmann::json j = {
      {"id", s.id},
      {"raw_message_id", s.message_id},
      {"type", report::to_string(s.type)},
      {"org_name", s.org_name},
      {"report_id", s.report_id},
      {"policy_domain", s.policy_domain},
      {"date_begin", s.date_begin},
      {"date_end", s.date_end},
      {"received_at", s.received_at},
      {"errors", s.error_count},
  };
  switch (s.type) {
    case report::ReportType::DmarcAggregate:
      j["messages"] = s.messages;
      j["pass"] = s.pass;
      j["fail"] = s.fail;
      break;
    case report::ReportType::TlsAggregate:
      j["sessions_ok"] = s.sessions_ok;
      j["sessions_failed"] = s.sessions_failed;
      break;
    case report::ReportType::Arf:
      j["feedback_type"] = s.feedback_type;
      j["source_ip"] = s.source_ip;
      break;
    case report::ReportType::Dsn:
      j["action"] = s.action;
      j["status"] = s.status;
      j["recipient"] = s.recipient;
      break;
  }
  return j;
}

void print_table(report::ReportType type, const std::vector<store::ReportSummary>& rows) {
  std::vector<std::string> head = {"ID", "RECEIVED", "ORG", "REPORT ID", "DOMAIN", "PERIOD"};
  std::vector<bool> right = {true, false, false, false, false, false};
  switch (type) {
    case report::ReportType::DmarcAggregate:
      head.insert(head.end(), {"MESSAGES", "PASS", "FAIL"});
      right.insert(right.end(), {true, true, true});
      break;
    case report::ReportType::TlsAggregate:
      head.insert(head.end(), {"SESSIONS OK", "FAILED"});
      right.insert(right.end(), {true, true});
      break;
    case report::ReportType::Arf:
      head.insert(head.end(), {"FEEDBACK", "SOURCE IP"});
      right.insert(right.end(), {false, false});
      break;
    case report::ReportType::Dsn:
      head.insert(head.end(), {"ACTION", "STATUS", "RECIPIENT"});
      right.insert(right.end(), {false, false, false});
      break;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& s : rows) {
    std::vector<std::string> c = {std::to_string(s.id),      format_minute(s.received_at),
                                  clip(s.org_name, 30),      clip(s.report_id, 36),
                                  clip(s.policy_domain, 30), period(s)};
    switch (type) {
      case report::ReportType::DmarcAggregate:
        c.insert(c.end(),
                 {std::to_string(s.messages), std::to_string(s.pass), std::to_string(s.fail)});
        break;
      case report::ReportType::TlsAggregate:
        c.insert(c.end(), {std::to_string(s.sessions_ok), std::to_string(s.sessions_failed)});
        break;
      case report::ReportType::Arf: c.insert(c.end(), {s.feedback_type, s.source_ip}); break;
      case report::ReportType::Dsn:
        c.insert(c.end(), {s.action, s.status, clip(s.recipient, 40)});
        break;
    }
    cells.push_back(std::move(c));
  }
  print_columns(head, right, cells);
}

// ---------------------------------------------------------------- raw messages

nlohmann::json message_json(const store::RawMessageInfo& m) {
  return {
      {"id", m.id},
      {"received_at", m.meta.received_at},
      {"source", m.meta.source},
      {"mail_from", m.meta.mail_from},
      {"rcpt_to", m.meta.rcpt_to},
      {"client", m.meta.client},
      {"size", m.size},
      {"compressed_size", m.compressed_size},
      {"sha256", m.sha256},
      {"status", store::to_string(m.parse_status)},
      {"parse_error", m.parse_error},
  };
}

// One line for a table cell: control characters (a multi-line parse error) become spaces.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return s;
}

// The envelope sender: "<>" is the null reverse-path (RFC 5321 §4.5.5, bounces); imported
// files have no envelope.
std::string sender(const store::RawMeta& meta) {
  if (!meta.mail_from.empty()) return meta.mail_from;
  return meta.source == "import" ? "-" : "<>";
}

int run_list_messages(const Context& ctx, const ListOptions& o) {
  if (!o.domain.empty()) {
    std::cerr << "mailreport list: --domain does not apply to messages\n";
    return kExitUsage;
  }
  std::optional<std::int64_t> since;
  if (!o.since.empty()) {
    auto s = parse_date_arg(o.since);
    if (!s) return fail("list", s.error());
    since = *s;
  }
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("list", store.error());
  // The store pages by ascending id; read every page, then show the newest first.
  std::vector<store::RawMessageInfo> rows;
  store::RawFilter filter;
  if (o.failed) filter.status = store::ParseStatus::Unparsed;
  filter.limit = 1000;
  for (;;) {
    auto page = (*store)->list_raw_messages(filter);
    if (!page) return fail("list", page.error());
    if (page->empty()) break;
    filter.after_id = page->back().id;
    for (auto& m : *page) {
      if (!since || m.meta.received_at >= *since) rows.push_back(std::move(m));
    }
  }
  std::reverse(rows.begin(), rows.end());
  if (o.limit > 0 && rows.size() > o.limit) rows.resize(o.limit);
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : rows) out.push_back(message_json(m));
    std::cout << dump_json(out) << "\n";
    return kExitOk;
  }
  if (rows.empty()) {
    std::cout << (o.failed ? "no messages without a report\n" : "no messages\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& m : rows) {
    cells.push_back({std::to_string(m.id), format_minute(m.meta.received_at), m.meta.source,
                     clip(sender(m.meta), 40), std::to_string(m.size),
                     store::to_string(m.parse_status), clip(one_line(m.parse_error), 80)});
  }
  print_columns({"ID", "RECEIVED", "SOURCE", "FROM", "SIZE", "STATUS", "PARSE ERROR"},
                {true, false, false, false, true, false, false}, cells);
  return kExitOk;
}

// ---------------------------------------------------------------- evaluations

nlohmann::json evaluation_json(const store::EvaluationRow& e) {
  report::DmarcHeader header;
  header.policy_published = e.policy;
  nlohmann::json policy = report::to_json(header).at("policy_published");
  policy["psd"] = std::string(1, e.psd);
  policy["rua"] = e.rua;
  policy["ruf"] = e.ruf;
  nlohmann::json j = {
      {"id", e.id},
      {"interval_begin", e.interval_begin},
      {"interval_end", e.interval_begin + 3600},
      {"first_seen", e.first_seen},
      {"last_seen", e.last_seen},
      {"policy_published", std::move(policy)},
  };
  j.update(report::to_json(e.record));
  return j;
}

// "example.com/s1 pass, other.example/s2 fail" for a table cell.
std::string dkim_cell(const report::DmarcAuthResults& a) {
  std::string out;
  for (const auto& d : a.dkim) {
    if (!out.empty()) out += ", ";
    out += d.domain + "/" + d.selector + " " + d.result;
  }
  return out.empty() ? "-" : out;
}

std::string spf_cell(const report::DmarcAuthResults& a) {
  for (const auto& s : a.spf) {
    if (s.scope == "mfrom") return s.domain + " " + s.result;
  }
  return a.spf.empty() ? "-" : a.spf.front().domain + " " + a.spf.front().result;
}

int run_list_evaluations(const Context& ctx, const ListOptions& o) {
  store::EvaluationFilter filter;
  filter.domain = o.domain;
  filter.limit = o.limit;
  if (!o.since.empty()) {
    auto since = parse_date_arg(o.since);
    if (!since) return fail("list", since.error());
    filter.since = *since;
  }
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("list", store.error());
  auto rows = (*store)->list_evaluations(filter);
  if (!rows) return fail("list", rows.error());
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *rows) out.push_back(evaluation_json(e));
    std::cout << dump_json(out) << "\n";
    return kExitOk;
  }
  if (rows->empty()) {
    std::cout << "no evaluations\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& e : *rows) {
    const auto& r = e.record;
    const auto& pe = r.row.policy_evaluated;
    cells.push_back({format_minute(e.interval_begin), clip(e.policy.domain, 30), "p=" + e.policy.p,
                     r.row.source_ip, clip(r.identifiers.header_from, 30),
                     clip(r.identifiers.envelope_from, 30), pe.dkim, pe.spf, pe.disposition,
                     std::to_string(r.row.count), clip(dkim_cell(r.auth_results), 60),
                     clip(spf_cell(r.auth_results), 40)});
  }
  print_columns({"HOUR", "DOMAIN", "POLICY", "SOURCE IP", "HEADER FROM", "ENVELOPE FROM", "DKIM",
                 "SPF", "DISPOSITION", "MESSAGES", "DKIM SIGNATURES", "SPF (MFROM)"},
                {false, false, false, false, false, false, false, false, false, true, false, false},
                cells);
  return kExitOk;
}

int run_list(const Context& ctx, const ListOptions& o) {
  if (o.type == "messages") return run_list_messages(ctx, o);
  if (o.type == "evaluations") {
    if (o.failed) {
      std::cerr << "mailreport list: --failed applies to messages only\n";
      return kExitUsage;
    }
    return run_list_evaluations(ctx, o);
  }
  if (o.failed) {
    std::cerr << "mailreport list: --failed applies to messages only\n";
    return kExitUsage;
  }
  auto type = parse_report_type(o.type);
  if (!type) {
    std::cerr << "mailreport list: unknown report type '" << o.type
              << "' (dmarc, tls, arf, dsn, messages or evaluations)\n";
    return kExitUsage;
  }
  store::ReportFilter filter;
  filter.type = type;
  filter.domain = o.domain;
  filter.limit = o.limit;
  if (!o.since.empty()) {
    auto since = parse_date_arg(o.since);
    if (!since) return fail("list", since.error());
    filter.since = *since;
  }
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("list", store.error());
  auto rows = (*store)->list_reports(filter);
  if (!rows) return fail("list", rows.error());
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : *rows) out.push_back(row_json(s));
    std::cout << dump_json(out) << "\n";
  } else if (rows->empty()) {
    std::cout << "no " << short_name(*type) << " reports\n";
  } else {
    print_table(*type, *rows);
  }
  return kExitOk;
}

}  // namespace

void add_list_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "list",
      "list stored reports of one type, the raw messages kept (list messages), or the milter's "
      "evaluations for aggregate reports (list evaluations)");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto o = std::make_shared<ListOptions>();
  cmd->add_option("type", o->type,
                  "dmarc, tls, arf, dsn, messages (raw messages kept) or evaluations (the "
                  "milter's, per hour)")
      ->required();
  cmd->add_option("--domain", o->domain, "only reports or evaluations of this policy domain");
  cmd->add_option("--since", o->since,
                  "only reports whose period begins at or after DATE, messages received or "
                  "evaluations recorded since then (YYYY-MM-DD or epoch seconds)");
  cmd->add_option("--limit", o->limit, "at most N reports or messages (newest first; 0 = all)");
  cmd->add_flag("--failed", o->failed,
                "messages: only those that held no report (kept raw with the reason)");
  cmd->add_flag("--json", o->json, "print one JSON array");
  cmd->callback([&ctx, o] { ctx.exit_code = run_list(ctx, *o); });
}

}  // namespace mailreport::cli
