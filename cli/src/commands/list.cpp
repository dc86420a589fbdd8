// mailreport list dmarc|tls|arf|dsn [--domain D] [--since DATE] [--limit N] [--json]: the
// stored reports of one type, newest period first, as a table or (--json) one JSON array.
// Columns: id, received, org, report id, domain, period, then per type: messages/pass/fail
// (DMARC: pass = aligned DKIM or SPF pass, RFC 7489 §3.1), sessions ok/failed (TLS),
// feedback type/source IP (ARF), action/status/recipient of the first recipient (DSN).
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"

namespace mailreport::cli {

namespace {

struct ListOptions {
  std::string type;
  std::string domain;
  std::string since;
  std::size_t limit = 0;
  bool json = false;
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

std::string clip(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max - 3) + "...";
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
  std::vector<std::size_t> width(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
  for (const auto& c : cells) {
    for (std::size_t i = 0; i < c.size(); ++i) width[i] = std::max(width[i], c[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& c) {
    std::string line;
    for (std::size_t i = 0; i < c.size(); ++i) {
      std::string pad(width[i] - std::min(width[i], c[i].size()), ' ');
      line += right[i] ? pad + c[i] : c[i] + pad;
      if (i + 1 < c.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  };
  print_row(head);
  for (const auto& c : cells) print_row(c);
}

int run_list(const Context& ctx, const ListOptions& o) {
  auto type = parse_report_type(o.type);
  if (!type) {
    std::cerr << "mailreport list: unknown report type '" << o.type
              << "' (dmarc, tls, arf or dsn)\n";
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
  auto* cmd = app.add_subcommand("list", "list stored reports of one type");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto o = std::make_shared<ListOptions>();
  cmd->add_option("type", o->type, "dmarc, tls, arf or dsn")->required();
  cmd->add_option("--domain", o->domain, "only reports about this policy domain");
  cmd->add_option("--since", o->since,
                  "only reports whose period begins at or after DATE "
                  "(YYYY-MM-DD or epoch seconds)");
  cmd->add_option("--limit", o->limit, "at most N reports (newest first; 0 = all)");
  cmd->add_flag("--json", o->json, "print one JSON array");
  cmd->callback([&ctx, o] { ctx.exit_code = run_list(ctx, *o); });
}

}  // namespace mailreport::cli
