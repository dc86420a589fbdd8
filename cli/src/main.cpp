// mailreport: the administration command.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>

#include "cli.hpp"

namespace mailreport::cli {

std::shared_ptr<const config::Config> Context::load_config() const {
  std::filesystem::path path = config_path;
  if (path.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(kDefaultConfigPath, ec)) return config::Config::defaults();
    path = kDefaultConfigPath;
  }
  auto loaded = config::load_file(path);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) std::cerr << path.string() << ":" << p.describe() << "\n";
    throw ConfigError("configuration has " + std::to_string(loaded.problems.size()) +
                      " problem(s)");
  }
  return loaded.config;
}

}  // namespace mailreport::cli

int main(int argc, char** argv) {
  using namespace mailreport::cli;
  CLI::App app{"mailreport: DMARC, TLS-RPT, ARF and DSN reports for Postfix and Sendmail"};
  app.require_subcommand(1);
  Context ctx;
  app.add_option("-c,--config", ctx.config_path,
                 std::string("configuration file (default ") + kDefaultConfigPath + " if present)");
  add_parse_command(app, ctx);
  add_import_command(app, ctx);
  add_list_command(app, ctx);
  add_show_command(app, ctx);
  add_export_command(app, ctx);
  add_reparse_command(app, ctx);
  add_purge_command(app, ctx);
  add_check_config_command(app, ctx);
  add_demo_command(app, ctx);
  add_outbox_command(app, ctx);
  add_serve_command(app, ctx);
  add_send_reports_command(app, ctx);
  add_suppress_command(app, ctx);
  add_migrate_command(app, ctx);
  add_webhooks_command(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  } catch (const ConfigError& e) {
    std::cerr << "mailreport: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "mailreport: " << e.what() << "\n";
    return kExitSoftware;
  }
  return ctx.exit_code;
}
