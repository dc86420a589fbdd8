// mailreport purge [--older-than DURATION]: applies the retention period now — deletes what is
// older than now minus report.analysis.store (default 30d), or minus --older-than: reports and
// raw messages received, and what the reports we send keep (evaluations, TLS counts, finished
// outbox entries, sent aggregate reports; Store::purge). mailreport serve does the same once a
// day. Prints what was removed.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "commands/store_util.hpp"

namespace mailreport::cli {

namespace {

int run_purge(const Context& ctx, const std::string& older_than) {
  auto cfg = ctx.load_config();
  std::chrono::seconds retention = cfg->report.analysis_retention;
  if (!older_than.empty()) {
    auto d = config::parse_duration(older_than);
    if (!d) return fail("purge", d.error());
    retention = *d;
  }
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("purge", store.error());
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::int64_t cutoff = now - retention.count();
  auto r = (*store)->purge(cutoff);
  if (!r) return fail("purge", r.error());
  std::cout << "removed " << r->reports << " report(s) and " << r->raw_messages
            << " raw message(s) received before " << format_minute(cutoff) << " UTC; "
            << r->evaluation_rows << " evaluation row(s), " << r->tls_counts << " TLS count(s), "
            << r->outbox_entries << " finished outbox entr"
            << (r->outbox_entries == 1 ? "y" : "ies") << " and " << r->aggregate_reports
            << " sent aggregate report(s)\n";
  return kExitOk;
}

}  // namespace

void add_purge_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("purge", "delete what is past retention (report.analysis.store)");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto older = std::make_shared<std::string>();
  cmd->add_option("--older-than", *older,
                  "retention to apply instead of report.analysis.store (e.g. 30d, 12h)");
  cmd->callback([&ctx, older] { ctx.exit_code = run_purge(ctx, *older); });
}

}  // namespace mailreport::cli
