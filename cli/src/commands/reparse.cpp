// mailreport reparse [--failed | --all]: runs the parsers again on stored raw messages (after a
// parser fix), replacing the reports derived from each, in one transaction per message.
// --failed (the default) takes the messages that could not be parsed; --all takes every one.
// Prints the counts; exit 0 unless the store failed.
#include <iostream>
#include <memory>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "mailreport/ingest/store_ingestor.hpp"

namespace mailreport::cli {

namespace {

int run_reparse(const Context& ctx, bool all) {
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("reparse", store.error());
  StderrLogger log(LogLevel::Warning);
  ingest::IngestOptions options;
  options.limits = extract_limits(*cfg);
  options.temp_dir = cfg->store.path.parent_path();
  ingest::StoreIngestor ingestor(**store, log, options);
  std::optional<store::ParseStatus> only;
  if (!all) only = store::ParseStatus::Unparsed;
  auto counts = ingestor.reparse_all(only);
  if (!counts) return fail("reparse", counts.error());
  std::cout << "reparsed " << counts->messages << " message(s): parsed " << counts->parsed
            << ", duplicate " << counts->duplicate << ", failed " << counts->unparsed
            << " (unparsed, kept raw); " << counts->reports_stored << " report(s) stored\n";
  return kExitOk;
}

}  // namespace

void add_reparse_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("reparse", "parse stored raw messages again");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto all = std::make_shared<bool>(false);
  auto failed = std::make_shared<bool>(false);
  auto* all_flag = cmd->add_flag("--all", *all, "every stored message");
  cmd->add_flag("--failed", *failed, "only messages that could not be parsed (default)")
      ->excludes(all_flag);
  // The callback owns both flags: CLI11 writes them while parsing, after this returns.
  cmd->callback([&ctx, all, failed] { ctx.exit_code = run_reparse(ctx, *all); });
}

}  // namespace mailreport::cli
