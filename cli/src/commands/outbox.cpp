// mailreport outbox [--state queued|sent|failed] [--kind KIND] [--limit N] [--json]: the
// reports mailreport sends (failure reports queued by the milter; mailreport serve sends them),
// newest first: id, kind, recipient, reported domain, state, attempts, the next attempt
// (queued) or when it finished (sent, failed), the last error and the Message-ID it was sent
// with. --json prints one array with the same fields (times as epoch seconds, the payload left
// out).
//
// mailreport outbox --reports [--kind dmarc-aggregate|tls-aggregate] [--domain D] [--limit N]
// [--json]: the aggregate reports we built (issue 5), newest first, one row each: id, kind,
// policy domain, period, records, messages (TLS: sessions), report id, and how its deliveries
// stand (outbox entries pointing at it, counted by state).
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/store_util.hpp"
#include "commands/table.hpp"
#include "mailreport/store/aggregate_payload.hpp"

namespace mailreport::cli {

namespace {

struct OutboxOptions {
  std::string state;
  std::string kind;
  std::size_t limit = 0;
  bool json = false;
  bool reports = false;
  std::string domain;
};

// Every outbox entry, oldest first (the store pages by ascending id).
Result<std::vector<store::OutboxEntry>> all_entries(store::Store& s, store::OutboxFilter filter) {
  std::vector<store::OutboxEntry> rows;
  filter.limit = 1000;
  for (;;) {
    auto page = s.list_outbox(filter);
    if (!page) return std::move(page).error();
    if (page->empty()) break;
    filter.after_id = page->back().id;
    for (auto& e : *page) rows.push_back(std::move(e));
  }
  return rows;
}

struct DeliveryCounts {
  std::uint64_t queued = 0, sent = 0, failed = 0;
};

std::string describe(const DeliveryCounts& d) {
  std::string out;
  auto add = [&out](std::uint64_t n, const char* what) {
    if (n > 0) out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(d.sent, "sent");
  add(d.queued, "queued");
  add(d.failed, "failed");
  return out.empty() ? "none" : out;
}

int run_reports(store::Store& s, const OutboxOptions& o) {
  store::AggregateReportFilter filter;
  filter.kind = o.kind;
  filter.domain = o.domain;
  filter.limit = o.limit;
  auto reports = s.list_aggregate_reports(filter);
  if (!reports) return fail("outbox", reports.error());
  // The deliveries of each report: the outbox entries of the aggregate kinds, by payload.
  std::map<std::int64_t, DeliveryCounts> deliveries;
  for (std::string_view kind : {store::kDmarcAggregateKind, store::kTlsAggregateKind}) {
    store::OutboxFilter f;
    f.kind = std::string(kind);
    f.with_payload = true;
    auto entries = all_entries(s, f);
    if (!entries) return fail("outbox", entries.error());
    for (const auto& e : *entries) {
      auto payload = store::aggregate_payload_from_json(e.payload);
      if (!payload) continue;
      DeliveryCounts& d = deliveries[payload->report];
      (e.state == store::OutboxState::Sent     ? d.sent
       : e.state == store::OutboxState::Failed ? d.failed
                                               : d.queued)++;
    }
  }
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *reports) {
      const DeliveryCounts& d = deliveries[r.id];
      out.push_back(
          {{"id", r.id},
           {"kind", r.kind},
           {"report_id", r.report_id},
           {"policy_domain", r.policy_domain},
           {"date_begin", r.date_begin},
           {"date_end", r.date_end},
           {"created_at", r.created_at},
           {"filename", r.filename},
           {"records", r.records},
           {"messages", r.messages},
           {"deliveries", {{"queued", d.queued}, {"sent", d.sent}, {"failed", d.failed}}}});
    }
    std::cout << dump_json(out) << "\n";
    return kExitOk;
  }
  if (reports->empty()) {
    std::cout << "no aggregate reports built yet\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : *reports) {
    cells.push_back({std::to_string(r.id), r.kind, clip(r.policy_domain, 40),
                     format_minute(r.date_begin) + " - " + format_minute(r.date_end),
                     std::to_string(r.records), std::to_string(r.messages), r.report_id,
                     describe(deliveries[r.id])});
  }
  print_columns(
      {"ID", "KIND", "DOMAIN", "PERIOD (UTC)", "RECORDS", "MESSAGES", "REPORT-ID", "DELIVERIES"},
      {true, false, false, false, true, true, false, false}, cells);
  return kExitOk;
}

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
  if (o.reports) {
    if (!o.state.empty()) {
      std::cerr << "mailreport outbox: --state does not go with --reports\n";
      return kExitUsage;
    }
    auto cfg = ctx.load_config();
    auto store = open_configured_store(*cfg, StoreAccess::ReadOnly);
    if (!store) return fail("outbox", store.error());
    return run_reports(**store, o);
  }
  if (!o.domain.empty()) {
    std::cerr << "mailreport outbox: --domain goes with --reports\n";
    return kExitUsage;
  }
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
  auto all = all_entries(**store, filter);
  if (!all) return fail("outbox", all.error());
  std::vector<store::OutboxEntry> rows = std::move(*all);
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
  cmd->add_option("--kind", o->kind,
                  "only this kind (dmarc-failure, dkim-failure, spf-failure, dmarc-aggregate, "
                  "tls-aggregate)");
  cmd->add_option("--limit", o->limit, "show at most N entries (newest first)");
  cmd->add_flag("--reports", o->reports,
                "list the aggregate reports built, with how their deliveries stand");
  cmd->add_option("--domain", o->domain, "with --reports: only this policy domain");
  cmd->add_flag("--json", o->json, "print a JSON array");
  cmd->callback([&ctx, o] { ctx.exit_code = run_outbox(ctx, *o); });
}

}  // namespace mailreport::cli
