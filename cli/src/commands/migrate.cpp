// mailreport migrate --from sqlite:PATH [--to postgresql:URL]: moves an existing SQLite store
// into an empty PostgreSQL database (store::migrate_sqlite_to_postgres: every table, ids kept,
// in one transaction), for a site that goes from one MX to several sharing one store.
//   --from  sqlite:PATH (or a bare PATH): the SQLite file; it is migrated to this build's
//           newest SQLite schema first, and otherwise only read.
//   --to    postgresql://... or postgres://... (a libpq URL, taken whole), or
//           postgresql:KEYWORD=VALUE ... (a libpq keyword/value string after the prefix);
//           without --to, the configured store's URL when store.type is "postgresql".
// Prints each table's row count on stderr as it is copied, and a summary line on stdout. The
// URL is shown with its password masked. Exit codes: 0; 64 for bad arguments or a target that
// already holds data; 78 for the configuration; 1 when a store failed.
//
// Not done: the other direction (PostgreSQL to SQLite), merging into a store that has data.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "mailreport/store/migrate.hpp"

namespace mailreport::cli {

namespace {

struct MigrateArgs {
  std::string from;
  std::string to;
};

// The libpq connection string of a --to argument; "" when it is not one.
std::string postgres_target(std::string_view to) {
  if (to.starts_with("postgresql://") || to.starts_with("postgres://")) return std::string(to);
  if (to.starts_with("postgresql:"))
    return std::string(to.substr(std::string_view("postgresql:").size()));
  return {};
}

int run_migrate(const Context& ctx, const MigrateArgs& args) {
  std::string_view from = args.from;
  if (from.starts_with("sqlite:")) from.remove_prefix(std::string_view("sqlite:").size());
  if (from.empty() || from.find("://") != std::string_view::npos) {
    std::cerr << "mailreport migrate: --from must be sqlite:PATH (the SQLite store to move)\n";
    return kExitUsage;
  }
  std::string url;
  if (!args.to.empty()) {
    url = postgres_target(args.to);
    if (url.empty()) {
      std::cerr << "mailreport migrate: --to must be postgresql:URL (postgresql://user@host/db, "
                   "or postgresql:host=... dbname=...)\n";
      return kExitUsage;
    }
  } else {
    auto cfg = ctx.load_config();
    if (cfg->store.type != "postgresql") {
      std::cerr << "mailreport migrate: no --to, and store.type is \"" << cfg->store.type
                << "\": give --to postgresql:URL, or configure the PostgreSQL store first\n";
      return kExitUsage;
    }
    url = cfg->store.url;
  }
  const std::string shown = config::mask_url_password(url);
  std::cerr << "mailreport migrate: sqlite:" << from << " -> postgresql " << shown << "\n";

  store::MigrateOptions options;
  options.sqlite_path = std::string(from);
  options.postgres_url = url;
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  options.progress = [&last](std::string_view table, std::uint64_t rows) {
    const auto now = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(now - last).count();
    last = now;
    char line[160];
    std::snprintf(line, sizeof line, "  %-22.*s %12llu rows  %7.2fs\n",
                  static_cast<int>(table.size()), table.data(),
                  static_cast<unsigned long long>(rows), secs);
    std::cerr << line << std::flush;
  };
  auto result = store::migrate_sqlite_to_postgres(options);
  if (!result) return fail("migrate", result.error());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char summary[256];
  std::snprintf(summary, sizeof summary, "%llu rows in %zu tables in %.1fs (%.0f rows/s)",
                static_cast<unsigned long long>(result->rows), result->tables.size(), secs,
                secs > 0 ? static_cast<double>(result->rows) / secs : 0.0);
  std::cout << "migrated " << summary << " from sqlite:" << from << " to postgresql " << shown
            << "\n";
  return kExitOk;
}

}  // namespace

void add_migrate_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "migrate",
      "move a SQLite store into an empty PostgreSQL database (ids kept, one transaction)");
  cmd->add_option("-c,--config", ctx.config_path,
                  "configuration file (its PostgreSQL store is the target when --to is omitted)");
  auto args = std::make_shared<MigrateArgs>();
  cmd->add_option("--from", args->from, "the SQLite store: sqlite:PATH")->required();
  cmd->add_option("--to", args->to,
                  "the PostgreSQL database: postgresql://USER@HOST/DB or postgresql:KEY=VALUE ... "
                  "(default: store.url of the configuration)");
  cmd->callback([&ctx, args] { ctx.exit_code = run_migrate(ctx, *args); });
}

}  // namespace mailreport::cli
