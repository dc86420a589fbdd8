// Shared plumbing of the `mailreport` sub-commands. Each sub-command lives in
// commands/<name>.cpp and registers itself with add_<name>_command(); main() lists them.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "mailreport/config/config.hpp"

namespace mailreport::cli {

// Exit codes (sysexits.h where one fits).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitDataErr = 65;  // input held no report
inline constexpr int kExitSoftware = 70;
inline constexpr int kExitConfig = 78;

inline constexpr const char* kDefaultConfigPath = "/etc/mailreport/mailreport.toml";

struct Context {
  std::string config_path;  // --config; empty = default path if it exists, else built-ins
  int exit_code = kExitOk;

  // Loads the configuration (printing every problem to stderr); throws ConfigError on
  // problems so that the command exits with kExitConfig.
  std::shared_ptr<const config::Config> load_config() const;
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void add_parse_command(CLI::App& app, Context& ctx);
void add_import_command(CLI::App& app, Context& ctx);
void add_list_command(CLI::App& app, Context& ctx);
void add_show_command(CLI::App& app, Context& ctx);
void add_export_command(CLI::App& app, Context& ctx);
void add_reparse_command(CLI::App& app, Context& ctx);
void add_purge_command(CLI::App& app, Context& ctx);
void add_check_config_command(CLI::App& app, Context& ctx);
void add_demo_command(CLI::App& app, Context& ctx);
void add_outbox_command(CLI::App& app, Context& ctx);
void add_serve_command(CLI::App& app, Context& ctx);
void add_suppress_command(CLI::App& app, Context& ctx);
void add_send_reports_command(CLI::App& app, Context& ctx);
void add_migrate_command(CLI::App& app, Context& ctx);
void add_webhooks_command(CLI::App& app, Context& ctx);

}  // namespace mailreport::cli
