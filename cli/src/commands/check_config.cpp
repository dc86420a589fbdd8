// mailreport check-config [--config FILE]: loads the configuration, prints every problem as
// "FILE:LINE: key: message" on stderr and exits 78 (EX_CONFIG); otherwise prints "FILE: OK"
// and the effective values that matter most. Without --config it checks
// /etc/mailreport/mailreport.toml, or the built-in defaults when that file does not exist.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

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

void print_summary(const config::Config& c) {
  std::string patterns;
  for (const auto& p : c.report.analysis_addresses.patterns()) {
    patterns += (patterns.empty() ? "" : ", ") + p;
  }
  std::cout << "  report domain:      " << c.report.domain << "\n"
            << "  report submitter:   " << c.report.submitter << "\n"
            << "  analysis addresses: " << patterns << "\n"
            << "  report retention:   " << config::format_duration(c.report.analysis_retention)
            << "\n"
            << "  store:              " << c.store.type << " " << c.store.path.string() << "\n"
            << "  lmtp listeners:     " << listeners(c.lmtp) << "\n"
            << "  lmtp hostname:      " << c.lmtp.hostname << "\n"
            << "  message size limit: " << config::format_size(c.limits.message_size) << "\n";
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
