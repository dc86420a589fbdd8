// mailreport show ID [--json]: one stored report in full. --json prints report::to_json (the
// same rendering as `parse`) with the store's id, raw_message_id and received_at added; the
// default is a human-readable page.
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>

#include "cli.hpp"
#include "commands/store_util.hpp"

namespace mailreport::cli {

namespace {

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

void line(std::ostream& os, const char* label, const std::string& value) {
  if (value.empty()) return;
  std::string l = std::string(label) + ":";
  l.resize(std::max<std::size_t>(l.size() + 1, 22), ' ');
  os << "  " << l << value << "\n";
}

std::string opt_date(const std::optional<std::int64_t>& t) {
  return t ? format_minute(*t) + " UTC" : std::string();
}

void print_errors(std::ostream& os, const std::vector<std::string>& errors) {
  if (errors.empty()) return;
  os << "\n  Parser notes (what was salvaged or ignored):\n";
  for (const auto& e : errors) os << "    - " << e << "\n";
}

void print_fields(std::ostream& os, const std::string& title,
                  const std::vector<report::HeaderField>& f) {
  if (f.empty()) return;
  os << "\n  " << title << ":\n";
  for (const auto& h : f) os << "    " << h.name << ": " << h.value << "\n";
}

void print_dmarc(std::ostream& os, const report::DmarcAggregate& r, const store::ReportSummary& s) {
  const auto& md = r.header.report_metadata;
  const auto& pp = r.header.policy_published;
  line(os, "Organisation", md.org_name + (md.email.empty() ? "" : " <" + md.email + ">"));
  line(os, "Contact", md.extra_contact_info);
  line(os, "Report ID", md.report_id);
  line(os, "Period",
       format_minute(md.date_range.begin) + " .. " + format_minute(md.date_range.end) + " UTC");
  line(os, "Generator", md.generator);
  line(os, "Schema",
       r.header.version.empty()
           ? r.header.xml_namespace
           : "version " + r.header.version +
                 (r.header.xml_namespace.empty() ? "" : " " + r.header.xml_namespace));
  std::string policy = pp.domain;
  auto tag = [&policy](const char* name, const std::string& v) {
    if (!v.empty()) policy += std::string(" ") + name + "=" + v;
  };
  tag("p", pp.p);
  tag("sp", pp.sp);
  tag("np", pp.np);
  tag("adkim", pp.adkim);
  tag("aspf", pp.aspf);
  if (pp.pct) tag("pct", std::to_string(*pp.pct));
  tag("fo", pp.fo);
  tag("t", pp.testing);
  tag("discovery", pp.discovery_method);
  line(os, "Policy published", policy);
  line(os, "Messages",
       std::to_string(s.messages) + " (" + std::to_string(s.pass) + " pass, " +
           std::to_string(s.fail) + " fail)");
  line(os, "Reporter errors", join(md.error, "; "));
  os << "\n  Records (" << r.records.size() << "):\n";
  for (const auto& rec : r.records) {
    const auto& pe = rec.row.policy_evaluated;
    os << "    " << rec.row.source_ip << "  count " << rec.row.count << "  disposition "
       << pe.disposition << "  dkim " << pe.dkim << "  spf " << pe.spf << "\n";
    os << "      header_from " << rec.identifiers.header_from;
    if (!rec.identifiers.envelope_from.empty()) {
      os << "  envelope_from " << rec.identifiers.envelope_from;
    }
    if (!rec.identifiers.envelope_to.empty()) os << "  envelope_to " << rec.identifiers.envelope_to;
    os << "\n";
    for (const auto& d : rec.auth_results.dkim) {
      os << "      dkim=" << d.result << " " << d.domain
         << (d.selector.empty() ? "" : " s=" + d.selector)
         << (d.human_result.empty() ? "" : " (" + d.human_result + ")") << "\n";
    }
    for (const auto& sp : rec.auth_results.spf) {
      os << "      spf=" << sp.result << " " << sp.domain
         << (sp.scope.empty() ? "" : " scope=" + sp.scope)
         << (sp.human_result.empty() ? "" : " (" + sp.human_result + ")") << "\n";
    }
    for (const auto& reason : pe.reason) {
      os << "      reason " << reason.type << (reason.comment.empty() ? "" : ": " + reason.comment)
         << "\n";
    }
  }
  print_errors(os, r.errors);
}

void print_tls(std::ostream& os, const report::TlsReport& r) {
  line(os, "Organisation", r.organization_name);
  line(os, "Contact", r.contact_info);
  line(os, "Report ID", r.report_id);
  line(os, "Period",
       format_minute(r.date_range.begin) + " .. " + format_minute(r.date_range.end) + " UTC");
  for (const auto& p : r.policies) {
    os << "\n  Policy " << p.policy_type << " for " << p.policy_domain << ": "
       << p.total_successful_session_count << " successful, " << p.total_failure_session_count
       << " failed session(s)\n";
    if (!p.mx_host.empty()) os << "    mx-host: " << join(p.mx_host) << "\n";
    for (const auto& ps : p.policy_string) os << "    | " << ps << "\n";
    for (const auto& f : p.failure_details) {
      os << "    failure " << f.result_type << ": " << f.failed_session_count << " session(s)";
      if (!f.sending_mta_ip.empty()) os << " from " << f.sending_mta_ip;
      if (!f.receiving_mx_hostname.empty() || !f.receiving_ip.empty()) {
        os << " to " << f.receiving_mx_hostname
           << (f.receiving_ip.empty() ? "" : " [" + f.receiving_ip + "]");
      }
      if (!f.receiving_mx_helo.empty()) os << " helo " << f.receiving_mx_helo;
      if (!f.failure_reason_code.empty()) os << " reason " << f.failure_reason_code;
      if (!f.additional_information.empty()) os << " (" << f.additional_information << ")";
      os << "\n";
    }
  }
  print_errors(os, r.errors);
}

void print_arf(std::ostream& os, const report::ArfReport& r) {
  line(os, "From", r.from);
  line(os, "Subject", r.subject);
  line(os, "Message-ID", r.message_id);
  line(os, "Feedback-Type", r.feedback_type);
  line(os, "Auth-Failure", r.auth_failure);
  line(os, "User-Agent", r.user_agent);
  line(os, "Source-IP", r.source_ip);
  line(os, "Arrival-Date", r.arrival_date ? opt_date(r.arrival_date) : r.arrival_date_raw);
  line(os, "Reporting-MTA", r.reporting_mta);
  line(os, "Reported-Domain", join(r.reported_domain));
  line(os, "Reported-URI", join(r.reported_uri));
  line(os, "Original-Mail-From", r.original_mail_from);
  line(os, "Original-Rcpt-To", join(r.original_rcpt_to));
  line(os, "Delivery-Result", r.delivery_result);
  line(os, "Authentication-Results", r.authentication_results);
  line(os, "DKIM-Domain", r.dkim_domain);
  line(os, "DKIM-Identity", r.dkim_identity);
  line(os, "DKIM-Selector", r.dkim_selector);
  line(os, "SPF-DNS", r.spf_dns);
  line(os, "Identity-Alignment", r.identity_alignment);
  if (r.incidents) line(os, "Incidents", std::to_string(*r.incidents));
  print_fields(os, "Feedback report fields", r.fields);
  print_fields(
      os,
      "Reported message (" +
          (r.original_message_type.empty() ? std::string("headers") : r.original_message_type) +
          ")",
      r.original_headers);
  if (!r.human_readable.empty()) os << "\n  Human-readable part:\n" << r.human_readable << "\n";
  print_errors(os, r.errors);
}

void print_dsn(std::ostream& os, const report::DsnReport& r) {
  line(os, "From", r.from);
  line(os, "Subject", r.subject);
  line(os, "Message-ID", r.message_id);
  line(os, "Reporting-MTA", r.reporting_mta);
  line(os, "Original-Envelope-Id", r.original_envelope_id);
  line(os, "DSN-Gateway", r.dsn_gateway);
  line(os, "Received-From-MTA", r.received_from_mta);
  line(os, "Arrival-Date", opt_date(r.arrival_date));
  os << "\n  Recipients (" << r.recipients.size() << "):\n";
  for (const auto& rc : r.recipients) {
    os << "    " << rc.final_recipient << "  " << rc.action << "  " << rc.status << "\n";
    if (!rc.original_recipient.empty() && rc.original_recipient != rc.final_recipient) {
      os << "      original " << rc.original_recipient << "\n";
    }
    if (!rc.remote_mta.empty()) os << "      remote-mta " << rc.remote_mta << "\n";
    if (!rc.diagnostic_code.empty()) os << "      diagnostic " << rc.diagnostic_code << "\n";
    if (rc.last_attempt_date) os << "      last attempt " << opt_date(rc.last_attempt_date) << "\n";
    if (rc.will_retry_until) os << "      retry until " << opt_date(rc.will_retry_until) << "\n";
  }
  print_fields(os, "Returned message headers", r.original_headers);
  print_errors(os, r.errors);
}

int run_show(const Context& ctx, std::int64_t id, bool json) {
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("show", store.error());
  auto r = (*store)->get_report(id);
  if (!r) return fail("show", r.error());
  if (json) {
    std::cout << dump_json(stored_report_json(*r), 2) << "\n";
    return kExitOk;
  }
  const auto& s = r->summary;
  std::ostringstream os;
  os << "Report " << s.id << " (" << report::to_string(s.type) << "), received "
     << format_minute(s.received_at) << " UTC";
  if (s.message_id != 0) os << " in raw message " << s.message_id;
  os << "\n";
  line(os, "Stored as", s.org_name + " / " + s.report_id + " / " + s.policy_domain);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, report::DmarcAggregate>) {
          print_dmarc(os, m, s);
        } else if constexpr (std::is_same_v<T, report::TlsReport>) {
          print_tls(os, m);
        } else if constexpr (std::is_same_v<T, report::ArfReport>) {
          print_arf(os, m);
        } else {
          print_dsn(os, m);
        }
      },
      r->report);
  std::cout << os.str();
  return kExitOk;
}

}  // namespace

void add_show_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("show", "show one stored report in full");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto id = std::make_shared<std::int64_t>(0);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("id", *id, "report id (from `mailreport list`)")->required();
  cmd->add_flag("--json", *json, "print JSON (as `mailreport parse`, with store metadata)");
  cmd->callback([&ctx, id, json] { ctx.exit_code = run_show(ctx, *id, *json); });
}

}  // namespace mailreport::cli
