// mailreport export --format json|csv [--type T] [--domain D] [--since DATE]: stored reports
// for other tools, oldest first.
//   json: one report per line (JSON Lines): report::to_json plus id, raw_message_id and
//         received_at — the same object as `show --json`.
//   csv:  RFC 4180 (CRLF lines, fields quoted when they hold a comma, quote or line break), one
//         row per DMARC record (default), per TLS failure detail (a policy without failures
//         gives one row), per ARF report, or per DSN recipient. Several DKIM/SPF results of a
//         DMARC record are joined with ';'. Times are RFC 3339 UTC.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"

namespace mailreport::cli {

namespace {

struct ExportOptions {
  std::string format = "json";
  std::string type;
  std::string domain;
  std::string since;
};

// RFC 4180 §2: quote fields that hold a separator, a quote or a line break; double quotes.
std::string csv_field(std::string_view v) {
  bool quote = v.find_first_of(",\"\r\n") != std::string_view::npos ||
               (!v.empty() && (v.front() == ' ' || v.back() == ' '));
  if (!quote) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void csv_row(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    line += csv_field(fields[i]);
  }
  std::cout << line << "\r\n";
}

std::string opt_time(const std::optional<std::int64_t>& t) {
  return t ? format_iso8601(*t) : std::string();
}

std::vector<std::string> common(const store::ReportSummary& s) {
  return {std::to_string(s.id),
          s.org_name,
          s.report_id,
          s.policy_domain,
          format_iso8601(s.date_begin),
          format_iso8601(s.date_end)};
}

void csv_header(report::ReportType type) {
  std::vector<std::string> h = {"id",         "org_name", "report_id", "policy_domain",
                                "date_begin", "date_end"};
  switch (type) {
    case report::ReportType::DmarcAggregate:
      h.insert(h.end(),
               {"source_ip", "count", "disposition", "dkim_aligned", "spf_aligned", "header_from",
                "envelope_from", "envelope_to", "dkim_domains", "dkim_selectors", "dkim_results",
                "spf_domains", "spf_scopes", "spf_results", "reasons"});
      break;
    case report::ReportType::TlsAggregate:
      h.insert(h.end(),
               {"policy_type", "policy_domain_reported", "mx_host", "successful_sessions",
                "failed_sessions", "result_type", "sending_mta_ip", "receiving_mx_hostname",
                "receiving_ip", "failed_session_count", "failure_reason_code"});
      break;
    case report::ReportType::Arf:
      h.insert(h.end(), {"feedback_type", "auth_failure", "source_ip", "arrival_date",
                         "original_mail_from", "original_rcpt_to", "reported_domain",
                         "delivery_result", "dkim_domain", "user_agent"});
      break;
    case report::ReportType::Dsn:
      h.insert(h.end(), {"reporting_mta", "final_recipient", "original_recipient", "action",
                         "status", "diagnostic_code", "remote_mta", "last_attempt_date"});
      break;
  }
  csv_row(h);
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ";") + s;
  return out;
}

void csv_report(const store::StoredReport& r) {
  const auto base = common(r.summary);
  auto row = [&base](std::vector<std::string> rest) {
    std::vector<std::string> f = base;
    f.insert(f.end(), rest.begin(), rest.end());
    csv_row(f);
  };
  if (const auto* d = std::get_if<report::DmarcAggregate>(&r.report)) {
    for (const auto& rec : d->records) {
      std::vector<std::string> dd, ds, dr, sd, ss, sr, reasons;
      for (const auto& a : rec.auth_results.dkim) {
        dd.push_back(a.domain);
        ds.push_back(a.selector);
        dr.push_back(a.result);
      }
      for (const auto& a : rec.auth_results.spf) {
        sd.push_back(a.domain);
        ss.push_back(a.scope);
        sr.push_back(a.result);
      }
      for (const auto& x : rec.row.policy_evaluated.reason) reasons.push_back(x.type);
      const auto& pe = rec.row.policy_evaluated;
      row({rec.row.source_ip, std::to_string(rec.row.count), pe.disposition, pe.dkim, pe.spf,
           rec.identifiers.header_from, rec.identifiers.envelope_from, rec.identifiers.envelope_to,
           join(dd), join(ds), join(dr), join(sd), join(ss), join(sr), join(reasons)});
    }
  } else if (const auto* t = std::get_if<report::TlsReport>(&r.report)) {
    for (const auto& p : t->policies) {
      std::vector<std::string> pol = {p.policy_type, p.policy_domain, join(p.mx_host),
                                      std::to_string(p.total_successful_session_count),
                                      std::to_string(p.total_failure_session_count)};
      if (p.failure_details.empty()) {
        pol.insert(pol.end(), 6, std::string());
        row(pol);
      }
      for (const auto& f : p.failure_details) {
        auto fr = pol;
        fr.insert(fr.end(),
                  {f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.receiving_ip,
                   std::to_string(f.failed_session_count), f.failure_reason_code});
        row(fr);
      }
    }
  } else if (const auto* a = std::get_if<report::ArfReport>(&r.report)) {
    row({a->feedback_type, a->auth_failure, a->source_ip, opt_time(a->arrival_date),
         a->original_mail_from, join(a->original_rcpt_to), join(a->reported_domain),
         a->delivery_result, a->dkim_domain, a->user_agent});
  } else if (const auto* d2 = std::get_if<report::DsnReport>(&r.report)) {
    for (const auto& rc : d2->recipients) {
      row({d2->reporting_mta, rc.final_recipient, rc.original_recipient, rc.action, rc.status,
           rc.diagnostic_code, rc.remote_mta, opt_time(rc.last_attempt_date)});
    }
  }
}

int run_export(const Context& ctx, const ExportOptions& o) {
  if (o.format != "json" && o.format != "csv") {
    std::cerr << "mailreport export: --format must be json or csv\n";
    return kExitUsage;
  }
  store::ReportFilter filter;
  if (!o.type.empty()) {
    filter.type = parse_report_type(o.type);
    if (!filter.type) {
      std::cerr << "mailreport export: unknown report type '" << o.type
                << "' (dmarc, tls, arf or dsn)\n";
      return kExitUsage;
    }
  } else if (o.format == "csv") {
    filter.type = report::ReportType::DmarcAggregate;  // one CSV holds one row shape
  }
  filter.domain = o.domain;
  if (!o.since.empty()) {
    auto since = parse_date_arg(o.since);
    if (!since) return fail("export", since.error());
    filter.since = *since;
  }
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("export", store.error());
  auto rows = (*store)->list_reports(filter);
  if (!rows) return fail("export", rows.error());
  std::sort(rows->begin(), rows->end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  if (o.format == "csv") csv_header(*filter.type);
  for (const auto& s : *rows) {
    auto r = (*store)->get_report(s.id);
    if (!r) {
      if (r.error().code == ErrorCode::NotFound) continue;  // purged meanwhile
      return fail("export", r.error());
    }
    if (o.format == "json") {
      std::cout << dump_json(stored_report_json(*r)) << "\n";
    } else {
      csv_report(*r);
    }
  }
  std::cout.flush();
  return std::cout ? kExitOk : kExitFailure;
}

}  // namespace

void add_export_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("export", "export stored reports as JSON lines or CSV");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto o = std::make_shared<ExportOptions>();
  cmd->add_option("--format", o->format, "json (one report per line) or csv")
      ->check(CLI::IsMember({"json", "csv"}));
  cmd->add_option("--type", o->type, "dmarc, tls, arf or dsn (csv: default dmarc)");
  cmd->add_option("--domain", o->domain, "only reports about this policy domain");
  cmd->add_option("--since", o->since,
                  "only reports whose period begins at or after DATE (YYYY-MM-DD or epoch)");
  cmd->callback([&ctx, o] { ctx.exit_code = run_export(ctx, *o); });
}

}  // namespace mailreport::cli
