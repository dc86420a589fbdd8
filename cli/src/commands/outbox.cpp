// mailreport outbox [--state queued|sent|failed] [--kind KIND] [--limit N] [--json]: the
// reports mailreport sends (failure reports queued by the milter; mailreport serve sends them),
// newest first: id, kind, recipient, reported domain, state, attempts, the next attempt
// (queued) or when it finished (sent, failed), the last error and the Message-ID it was sent
// with. --json prints one array with the same fields (times as epoch seconds, the payload left
// out).
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "commands/table.hpp"

namespace mailreport::cli {

namespace {

struct OutboxOptions {
  std::string state;
  std::string kind;
  std::size_t limit = 0;
  bool json = false;
};

nlohmann::json entry_json(const store::OutboxEntry& e) {
  nlohmann::json j = {
      {"id", e.id},
      {"kind", e.kind},
      {"recipient", e.recipient},
      {"reported_domain", e.reported_domain},
      {"created_at", e.created_at},
      {"state", store::to_string(e.state)},
      {"attempts", e.attempts},
      {"last_error", e.last_error},
      {"message_id", e.message_id},
  };
  if (e.state == store::OutboxState::Queued) {
    j["next_attempt_at"] = e.next_attempt_at;
  } else {
    j["finished_at"] = e.finished_at;
  }
  return j;
}

int run_outbox(const Context& ctx, const OutboxOptions& o) {
  store::OutboxFilter filter;
  if (!o.state.empty()) {
    filter.state = store::outbox_state_from_string(o.state);
    if (!filter.state) {
      std::cerr << "mailreport outbox: --state must be queued, sent or failed\n";
      return kExitUsage;
    }
  }
  filter.kind = o.kind;
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("outbox", store.error());
  // The store pages by ascending id; read every page, then show the newest first.
  std::vector<store::OutboxEntry> rows;
  filter.limit = 1000;
  for (;;) {
    auto page = (*store)->list_outbox(filter);
    if (!page) return fail("outbox", page.error());
    if (page->empty()) break;
    filter.after_id = page->back().id;
    for (auto& e : *page) rows.push_back(std::move(e));
  }
  std::reverse(rows.begin(), rows.end());
  if (o.limit > 0 && rows.size() > o.limit) rows.resize(o.limit);
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : rows) out.push_back(entry_json(e));
    std::cout << dump_json(out) << "\n";
    return kExitOk;
  }
  if (rows.empty()) {
    std::cout << "no reports in the outbox\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& e : rows) {
    std::string when = e.state == store::OutboxState::Queued
                           ? "next " + format_minute(e.next_attempt_at)
                           : format_minute(e.finished_at);
    cells.push_back({std::to_string(e.id), e.kind, clip(e.recipient, 40),
                     clip(e.reported_domain, 30), store::to_string(e.state),
                     std::to_string(e.attempts), when, clip(e.last_error, 60),
                     clip(e.message_id, 50)});
  }
  print_columns({"ID", "KIND", "RECIPIENT", "DOMAIN", "STATE", "ATTEMPTS", "WHEN", "LAST ERROR",
                 "MESSAGE-ID"},
                {true, false, false, false, false, true, false, false, false}, cells);
  return kExitOk;
}

}  // namespace

void add_outbox_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("outbox", "list the reports queued, sent and failed");
  auto o = std::make_shared<OutboxOptions>();
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  cmd->add_option("--state", o->state, "only entries in this state: queued, sent or failed");
  cmd->add_option("--kind", o->kind, "only this kind (dmarc-failure, dkim-failure, spf-failure)");
  cmd->add_option("--limit", o->limit, "show at most N entries (newest first)");
  cmd->add_flag("--json", o->json, "print a JSON array");
  cmd->callback([&ctx, o] { ctx.exit_code = run_outbox(ctx, *o); });
}

}  // namespace mailreport::cli
