// mailreport suppress list [--json] | add ADDRESS [--reason TEXT] | remove ADDRESS: the
// destinations of our aggregate reports that get nothing more (issue 5). mailreport-lmtp counts
// the bounces (DSNs) of the reports we sent against their recipient and suppresses it at
// report.suppress-after of them; `add` suppresses an address (or an https rua URL) by hand,
// `remove` forgets it with its failures, so that reports go to it again.
//
// list prints address, state (suppressed, by hand or after bounces, or only counted), the
// bounces counted, the last one and the reason; --json the same as one array (times as epoch
// seconds). Exit codes: 0; 64 for a bad address; 1 when `remove` does not know the address or
// the store fails.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "commands/table.hpp"

namespace mailreport::cli {

namespace {

struct SuppressOptions {
  bool json = false;
  std::string address;
  std::string reason;
};

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A destination as the outbox names it: an address ("mailto:" dropped, as in a rua URI) or an
// https URL. nullopt when it is neither.
std::optional<std::string> destination(std::string text) {
  if (text.size() > 7) {
    std::string scheme = text.substr(0, 7);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (scheme == "mailto:") text.erase(0, 7);
  }
  const bool blank =
      std::any_of(text.begin(), text.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
  if (text.empty() || blank) return std::nullopt;
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // The store keeps destinations in lower case.
  if (lower.starts_with("https://") && lower.size() > 8) return lower;
  const auto at = lower.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == lower.size()) return std::nullopt;
  return lower;
}

std::string state_of(const store::Suppression& s) {
  if (!s.suppressed) return "counting";
  return s.manual ? "suppressed (by hand)" : "suppressed";
}

int run_list(const Context& ctx, const SuppressOptions& o) {
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
  if (!store) return fail("suppress", store.error());
  auto rows = (*store)->list_suppressions();
  if (!rows) return fail("suppress", rows.error());
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : *rows) {
      out.push_back({{"address", s.address},
                     {"suppressed", s.suppressed},
                     {"manual", s.manual},
                     {"failures", s.failures},
                     {"created_at", s.created_at},
                     {"last_failure_at", s.last_failure_at},
                     {"reason", s.reason}});
    }
    std::cout << dump_json(out) << "\n";
    return kExitOk;
  }
  if (rows->empty()) {
    std::cout << "no suppressed destinations\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& s : *rows) {
    cells.push_back({clip(s.address, 50), state_of(s), std::to_string(s.failures),
                     s.last_failure_at > 0 ? format_minute(s.last_failure_at) : "-",
                     format_minute(s.created_at), clip(s.reason, 70)});
  }
  print_columns({"ADDRESS", "STATE", "BOUNCES", "LAST BOUNCE", "SINCE", "REASON"},
                {false, false, true, false, false, false}, cells);
  return kExitOk;
}

int run_add(const Context& ctx, const SuppressOptions& o) {
  auto address = destination(o.address);
  if (!address) {
    std::cerr << "mailreport suppress: '" << o.address
              << "' is not an address (local@domain) or an https URL\n";
    return kExitUsage;
  }
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("suppress", store.error());
  const std::string reason = o.reason.empty() ? "added by mailreport suppress add" : o.reason;
  if (auto st = (*store)->add_suppression(*address, reason, now_seconds()); !st) {
    return fail("suppress", st.error());
  }
  std::cout << "suppressed " << *address << "\n";
  return kExitOk;
}

int run_remove(const Context& ctx, const SuppressOptions& o) {
  auto address = destination(o.address);
  if (!address) {
    std::cerr << "mailreport suppress: '" << o.address
              << "' is not an address (local@domain) or an https URL\n";
    return kExitUsage;
  }
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("suppress", store.error());
  if (auto st = (*store)->remove_suppression(*address); !st) {
    if (st.error().code == ErrorCode::NotFound) {
      std::cerr << "mailreport suppress: " << *address << " is not in the list\n";
      return kExitFailure;
    }
    return fail("suppress", st.error());
  }
  std::cout << "removed " << *address << ": reports go to it again\n";
  return kExitOk;
}

}  // namespace

void add_suppress_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "suppress", "list, add or remove destinations that get no more aggregate reports");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  cmd->require_subcommand(1);
  auto o = std::make_shared<SuppressOptions>();

  auto* list = cmd->add_subcommand("list", "list the suppressed destinations and bounce counts");
  list->add_flag("--json", o->json, "print a JSON array");
  list->callback([&ctx, o] { ctx.exit_code = run_list(ctx, *o); });

  auto* add = cmd->add_subcommand("add", "send nothing more to ADDRESS");
  add->add_option("address", o->address, "an address, or an https rua URL")->required();
  add->add_option("--reason", o->reason, "why (shown by suppress list)");
  add->callback([&ctx, o] { ctx.exit_code = run_add(ctx, *o); });

  auto* remove = cmd->add_subcommand("remove", "send to ADDRESS again (forgets its bounces)");
  remove->add_option("address", o->address, "an address, or an https rua URL")->required();
  remove->callback([&ctx, o] { ctx.exit_code = run_remove(ctx, *o); });
}

}  // namespace mailreport::cli
