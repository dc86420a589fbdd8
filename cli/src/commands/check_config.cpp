// mailreport check-config [--config FILE]: loads the configuration, prints every problem as
// "FILE:LINE: key: message" on stderr and exits 78 (EX_CONFIG); otherwise prints "FILE: OK"
// and the effective values that matter most (the report.domain, store, listeners, the milter,
// the failure and aggregate reports we send and how, the TLS result collector, the dashboard,
// the warnings and their webhooks, and the signing keys; never the redact-key, the store's
// password, the dashboard's token, nor a webhook's password, signature key or auth secret).
// Without --config it checks /etc/mailreport/mailreport.toml, or the built-in defaults when
// that file does not exist.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"

namespace mailreport::cli {

namespace {

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode));
  return buf;
}

std::string listeners(const config::LmtpConfig& lmtp) {
  std::string out;
  if (!lmtp.unix_socket.empty()) {
    out += "unix:" + lmtp.unix_socket.string() + " (mode " + octal_mode(lmtp.unix_socket_mode);
    if (!lmtp.unix_socket_owner.empty()) out += ", owner " + lmtp.unix_socket_owner;
    if (!lmtp.unix_socket_group.empty()) out += ", group " + lmtp.unix_socket_group;
    out += ")";
  }
  if (!lmtp.tcp.empty()) out += std::string(out.empty() ? "" : ", ") + "tcp:" + lmtp.tcp;
  return out.empty() ? "none" : out;
}

std::string join(const std::vector<std::string>& items, std::string_view empty) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? std::string(empty) : out;
}

std::string rate(const std::optional<config::RateLimit>& send) {
  if (!send) return "never (send = false)";
  return "at most " + std::to_string(send->count) + " per address per " +
         config::format_duration(send->period);
}

void print_failure_kind(const char* name, const config::FailureReportSettings& f) {
  std::cout << "  " << name << " failure reports:\n"
            << "    from:             " << (f.from_name.empty() ? "" : "\"" + f.from_name + "\" ")
            << "<" << f.from_address << ">\n"
            << "    subject:          " << f.subject << "\n"
            << "    signed with:      " << join(f.sign, "nothing (unsigned)") << "\n"
            << "    send:             " << rate(f.send) << "\n";
}

void print_aggregate_kind(const char* name, const config::AggregateReportSettings& a, bool dmarc) {
  std::cout << "  " << name << " aggregate reports:\n"
            << "    send:             " << config::to_string(a.send);
  if (a.send != config::AggregateFrequency::Never) {
    std::cout << " (UTC), spread over " << config::format_duration(a.spread);
  }
  std::cout << "\n"
            << "    from:             " << (a.from_name.empty() ? "" : "\"" + a.from_name + "\" ")
            << "<" << a.from_address << ">\n"
            << "    organisation:     " << a.org_name << "\n"
            << "    contact:          " << (a.contact_info.empty() ? "none" : a.contact_info)
            << "\n"
            << "    signed with:      " << join(a.sign, "nothing (unsigned)") << "\n"
            << "    max size:         " << config::format_size(a.max_size) << "\n";
  if (dmarc) std::cout << "    format:           " << config::to_string(a.format) << "\n";
}

// The store, a URL with its password masked.
std::string store_line(const config::StoreConfig& st) {
  if (st.type != "postgresql") return st.type + " " + st.path.string();
  std::string out = "postgresql " + config::mask_url_password(st.url);
  if (!st.url_file.empty()) out += " (from " + st.url_file.string() + ")";
  return out + ", pool " + std::to_string(st.pool_size) + ", acquire timeout " +
         config::format_duration(
             std::chrono::duration_cast<std::chrono::seconds>(st.acquire_timeout));
}

// A duration that may be less than a second ("500ms").
std::string duration_ms(std::chrono::milliseconds d) {
  if (d.count() % 1000 != 0) return std::to_string(d.count()) + "ms";
  return config::format_duration(std::chrono::duration_cast<std::chrono::seconds>(d));
}

void print_dashboard(const config::DashboardConfig& d) {
  std::cout << "  dashboard:          ";
  if (d.listen.empty()) {
    std::cout << "off\n";
    return;
  }
  std::cout << "http://" << d.listen << ", token ";
  if (!d.token.empty()) {
    std::cout << "set";
  } else if (!d.token_file.empty()) {
    std::cout << "set (from " << d.token_file.string() << ")";
  } else if (d.allow_no_token) {
    std::cout << "unset (allow-no-token: no authentication)";
  } else {
    std::cout << "unset (the listener will not start: set token, token-file or allow-no-token)";
  }
  std::cout << ", at most " << d.max_connections << " connections, timeout "
            << config::format_duration(d.timeout) << "\n";
}

void print_alerts(const config::Config& c) {
  const auto& a = c.alerts;
  std::cout << "  alerts:             ";
  if (!a.enable) {
    std::cout << "off\n";
  } else {
    std::cout << "on, every " << config::format_duration(a.interval) << ", for "
              << join(a.domains, "every domain") << "\n";
    std::string rules = "dmarc failures >= " + std::to_string(a.dmarc_failure_count) +
                        " or >= " + std::to_string(a.dmarc_failure_rate * 100.0);
    // std::to_string gives six decimals: trim "10.000000" to "10".
    while (rules.back() == '0') rules.pop_back();
    if (rules.back() == '.') rules.pop_back();
    rules += "% of >= " + std::to_string(a.dmarc_min_messages) + " messages";
    const auto count = [](std::uint64_t n, const char* what) {
      return n == 0 ? std::string(what) + " off" : std::string(what) + " >= " + std::to_string(n);
    };
    std::cout << "    rules:            " << rules << "; "
              << count(a.dmarc_disposition_count, "quarantine/reject") << "; "
              << count(a.tls_failure_count, "tls failures") << "; new sources "
              << (a.new_source ? "on" : "off") << "; arf " << (a.arf ? "on" : "off")
              << "; parse failures " << (a.parse_failures ? "on" : "off") << "\n";
  }
  std::cout << "  webhooks:           " << (c.webhooks.empty() ? "none" : "") << "\n";
  for (const auto& [id, w] : c.webhooks) {
    std::cout << "    " << id << ": " << config::mask_url_password(w.url) << " events "
              << join(w.events, "none") << " (timeout " << config::format_duration(w.timeout)
              << ", throttle " << duration_ms(w.throttle) << ", discard after "
              << config::format_duration(w.discard_after)
              << (w.signature_key.empty() ? ", unsigned" : ", signed");
    if (!w.headers.empty()) std::cout << ", " << w.headers.size() << " extra headers";
    if (!w.auth_username.empty()) std::cout << ", basic auth as " << w.auth_username;
    if (w.allow_invalid_certs) std::cout << ", invalid certificates allowed";
    std::cout << ")\n";
  }
}

void print_summary(const config::Config& c) {
  const auto& m = c.milter;
  std::cout << "  report domain:      " << c.report.domain << "\n"
            << "  report submitter:   " << c.report.submitter << "\n"
            << "  analysis addresses: " << join(c.report.analysis_addresses.patterns(), "") << "\n"
            << "  report retention:   " << config::format_duration(c.report.analysis_retention)
            << "\n"
            << "  store:              " << store_line(c.store) << "\n"
            << "  lmtp listeners:     " << listeners(c.lmtp) << "\n"
            << "  lmtp hostname:      " << c.lmtp.hostname << "\n"
            << "  message size limit: " << config::format_size(c.limits.message_size) << "\n"
            << "  milter socket:      " << m.socket;
  if (!m.socket_path.empty()) {
    std::cout << " (mode " << octal_mode(m.socket_mode);
    if (!m.socket_owner.empty()) std::cout << ", owner " << m.socket_owner;
    if (!m.socket_group.empty()) std::cout << ", group " << m.socket_group;
    std::cout << ")";
  }
  std::cout << "\n"
            << "  milter authserv-id: " << m.authserv_id << "\n"
            << "  trusted authserv:   " << join(m.trust_authserv_ids, "none") << "\n"
            << "  trusted networks:   " << join(m.trusted_networks.texts(), "none") << "\n"
            << "  dmarc:              "
            << (m.dmarc_enforce
                    ? std::string("enforced (temperror: ") + config::to_string(m.dmarc_temperror) +
                          ", quarantine: " + config::to_string(m.dmarc_quarantine) + ")"
                    : std::string("observed only"))
            << ", discovery " << config::to_string(m.dmarc_discovery) << "\n"
            << "  dns:                "
            << (c.dns.local_only ? std::string("local data only")
                                 : join(c.dns.nameservers, "/etc/resolv.conf"))
            << ", timeout " << config::format_duration(c.dns.timeout) << "\n";
  print_failure_kind("dmarc", c.report.dmarc);
  print_failure_kind("dkim", c.report.dkim);
  print_failure_kind("spf", c.report.spf);
  print_aggregate_kind("dmarc", c.report.dmarc_aggregate, true);
  print_aggregate_kind("tls", c.report.tls_aggregate, false);
  std::cout << "  suppress after:     "
            << (c.report.suppress_after == 0
                    ? std::string("never (suppress-after = 0)")
                    : std::to_string(c.report.suppress_after) + " bounced reports")
            << "\n";
  const auto& t = c.tlsrpt;
  std::cout << "  tlsrpt collector:   ";
  if (t.listen.empty()) {
    std::cout << "off\n";
  } else {
    std::cout << "unix-dgram:" << t.listen.string() << " (mode " << octal_mode(t.socket_mode);
    if (!t.socket_group.empty()) std::cout << ", group " << t.socket_group;
    std::cout << "), commit every " << config::format_duration(t.flush_interval) << " or "
              << t.batch_size << " results\n";
  }
  print_dashboard(c.dashboard);
  print_alerts(c);
  const auto& f = c.report.failure;
  std::cout << "  failure original:   " << config::to_string(f.include) << ", cut at "
            << config::format_size(f.max_original)
            << (f.redact ? ", local-parts redacted (RFC 6590)" : "") << "\n";
  const auto& dsn = c.report.dsn;
  std::cout << "  dsn:                ";
  if (dsn.from_address.empty() && dsn.from_name.empty() && dsn.sign.empty()) {
    std::cout << "left as the MTA writes them\n";
  } else {
    std::cout << "from " << (dsn.from_name.empty() ? "" : "\"" + dsn.from_name + "\" ")
              << (dsn.from_address.empty() ? "(the MTA's address)" : "<" + dsn.from_address + ">")
              << ", signed with " << join(dsn.sign, "nothing") << "\n";
  }
  const auto& sub = c.report.submit;
  std::cout << "  submission:         "
            << (sub.method == config::SubmitMethod::Sendmail ? sub.sendmail_path.string()
                                                             : sub.smtp_url)
            << " (timeout " << config::format_duration(sub.timeout) << ", retried for "
            << config::format_duration(sub.max_age) << ")\n";
  std::cout << "  signatures:         " << (c.signatures.empty() ? "none" : "") << "\n";
  for (const auto& [id, sig] : c.signatures) {
    std::cout << "    " << id << ": " << sig.algorithm << " d=" << sig.domain
              << " s=" << sig.selector << " c=" << sig.canonicalization << " key "
              << sig.private_key.string() << "\n";
  }
}

int check_config(const Context& ctx) {
  std::filesystem::path path = ctx.config_path;
  if (path.empty()) {
    std::error_code ec;
    if (std::filesystem::exists(kDefaultConfigPath, ec)) path = kDefaultConfigPath;
  }
  const std::string name = path.empty() ? "built-in defaults" : path.string();
  const config::LoadResult loaded =
      path.empty() ? config::load_string("", "") : config::load_file(path);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) {
      std::cerr << name << (p.line > 0 ? ":" : ": ") << p.describe() << "\n";
    }
    return kExitConfig;
  }
  std::cout << name << ": OK\n";
  print_summary(*loaded.config);
  return kExitOk;
}

}  // namespace

void add_check_config_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("check-config",
                                 "check the configuration file and show the effective values");
  cmd->add_option("-c,--config", ctx.config_path,
                  std::string("configuration file (default ") + kDefaultConfigPath +
                      " if present, else the built-in defaults)");
  cmd->callback([&ctx] { ctx.exit_code = check_config(ctx); });
}

}  // namespace mailreport::cli
