// mailreport webhooks [--json] [ID]: the webhook events waiting in the store (see
// docs/alerts.md), per configured webhook and for webhooks no longer configured (their events
// are dropped by the next delivery pass of mailreport serve).
//
// Prints one line per webhook (id, pending events, oldest, URL) and then, per event, its id,
// type, creation time, attempts, next attempt and last error. --json prints
// {"webhooks": [{"webhook", "configured", "pending"}], "events": [...]} with times as epoch
// seconds. Exit codes: 0; 1 when the store fails.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "commands/table.hpp"

namespace mailreport::cli {

namespace {

struct WebhooksOptions {
  bool json = false;
  std::string id;  // "" = every webhook
};

int run_webhooks(const Context& ctx, const WebhooksOptions& o) {
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("webhooks", store.error());
  auto depths = (*store)->webhook_queue_depths();
  if (!depths) return fail("webhooks", depths.error());
  auto events = (*store)->list_webhook_events(o.id);
  if (!events) return fail("webhooks", events.error());

  std::map<std::string, std::uint64_t> pending;
  for (const auto& [id, n] : cfg->webhooks) pending[id] = 0;
  for (const auto& [id, n] : *depths) pending[id] = n;
  if (!o.id.empty()) {
    auto n = pending.find(o.id);
    std::uint64_t count = n == pending.end() ? 0 : n->second;
    pending = {{o.id, count}};
  }

  if (o.json) {
    nlohmann::json hooks = nlohmann::json::array();
    for (const auto& [id, n] : pending) {
      hooks.push_back(
          {{"webhook", id}, {"configured", cfg->webhooks.contains(id)}, {"pending", n}});
    }
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : *events) {
      list.push_back({{"id", e.id},
                      {"webhook", e.webhook},
                      {"type", e.type},
                      {"created_at", e.created_at},
                      {"attempts", e.attempts},
                      {"next_attempt_at", e.next_attempt_at},
                      {"last_error", e.last_error},
                      {"event", nlohmann::json::parse(e.body, nullptr, false)}});
    }
    std::cout << dump_json({{"webhooks", hooks}, {"events", list}}) << "\n";
    return kExitOk;
  }
  if (pending.empty()) {
    std::cout << "no webhooks configured and no events pending\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& [id, n] : pending) {
    auto hook = cfg->webhooks.find(id);
    std::string url = hook == cfg->webhooks.end() ? "(not configured: dropped by serve)"
                                                  : config::mask_url_password(hook->second.url);
    cells.push_back({id, std::to_string(n), clip(url, 60)});
  }
  print_columns({"WEBHOOK", "PENDING", "URL"}, {false, true, false}, cells);
  if (events->empty()) return kExitOk;
  std::cout << "\n";
  cells.clear();
  for (const auto& e : *events) {
    cells.push_back({std::to_string(e.id), e.webhook, e.type, format_minute(e.created_at),
                     std::to_string(e.attempts), format_minute(e.next_attempt_at),
                     clip(e.last_error, 50)});
  }
  print_columns({"ID", "WEBHOOK", "TYPE", "CREATED", "ATTEMPTS", "NEXT", "LAST ERROR"},
                {true, false, false, false, true, false, false}, cells);
  return kExitOk;
}

}  // namespace

void add_webhooks_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("webhooks", "list the webhook events waiting to be delivered");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto o = std::make_shared<WebhooksOptions>();
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->add_option("webhook", o->id, "only this webhook's events");
  cmd->callback([&ctx, o] { ctx.exit_code = run_webhooks(ctx, *o); });
}

}  // namespace mailreport::cli
