// mailreport send-reports [--dry-run [--out DIR]] [--domain D] [--now] [--kind dmarc|tls|all]:
// builds the aggregate reports that are due now (issue 5), as mailreport serve does at each
// interval end, then runs one outbox pass so that the deliveries that are due go out.
//   --now      closes the current interval at once: everything recorded until now is reported,
//              and its deliveries are due at once (no spread);
//   --domain   only that policy domain (the kind's watermark does not move);
//   --dry-run  builds the reports but commits nothing and sends nothing; with --out DIR (made
//              when missing) each delivery is written there: a mail delivery as the message
//              mailreport would submit, unsigned (<report-id>-<n>.eml), an https delivery as
//              the body it would POST (<report-id>-<n>.json.gz).
// Prints one line per kind ("dmarc: 2 reports, 3 deliveries, 120 messages") and the outbox
// pass's outcome. Exit codes: 0; 64 for bad arguments; 78 for the configuration; 1 when a
// build or the store failed (another builder at work on the interval counts as a failure).
//
// Not done: signing in --dry-run (the keys are often readable by the service user only).
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include "cli.hpp"
#include "commands/aggregate_util.hpp"
#include "commands/store_util.hpp"
#include "mailreport/outbound/aggregate_message.hpp"
#include "mailreport/outbound/outbox_runner.hpp"
#include "mailreport/outbound/signer.hpp"
#include "mailreport/outbound/submit.hpp"

namespace mailreport::cli {

namespace {

struct SendOptions {
  bool dry_run = false;
  std::string out;
  std::string domain;
  bool now = false;
  std::string kind = "all";
  std::int64_t at = 0;  // hidden --at: the clock, for tests (0 = the real time)
};

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_https(std::string_view recipient) {
  return recipient.size() > 8 &&
         (recipient.substr(0, 8) == "https://" || recipient.substr(0, 8) == "HTTPS://");
}

// Writes each delivery of `built` into `dir`; counts the files.
Status write_delivery_files(const outbound::BuiltReport& built, const config::Config& config,
                            const std::filesystem::path& dir, std::int64_t now,
                            std::uint64_t& files) {
  std::size_t n = 0;
  for (const store::OutboxEntry& d : built.deliveries) {
    ++n;
    const std::string stem = built.report.report_id + "-" + std::to_string(n);
    std::filesystem::path path;
    std::string bytes;
    if (is_https(d.recipient)) {
      // RFC 8460 §5.3.2: the POST body is the gzip report itself.
      path = dir / (stem + ".json.gz");
      bytes = built.report.content;
    } else {
      auto message = outbound::build_aggregate_message(built.report, config, d.recipient, now);
      if (!message) {
        return make_error(message.error().code, built.report.report_id + " to " + d.recipient +
                                                    ": " + message.error().message);
      }
      path = dir / (stem + ".eml");
      bytes = std::move(message->message);
    }
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) return make_error(ErrorCode::Io, "cannot write " + path.string());
    ++files;
  }
  return {};
}

int run_send_reports(const Context& ctx, const SendOptions& o) {
  AggregateKinds kinds = AggregateKinds::All;
  if (o.kind == "dmarc") {
    kinds = AggregateKinds::Dmarc;
  } else if (o.kind == "tls") {
    kinds = AggregateKinds::Tls;
  } else if (o.kind != "all") {
    std::cerr << "mailreport send-reports: --kind must be dmarc, tls or all\n";
    return kExitUsage;
  }
  if (!o.out.empty() && !o.dry_run) {
    std::cerr << "mailreport send-reports: --out goes with --dry-run\n";
    return kExitUsage;
  }
  auto cfg = ctx.load_config();
  StderrLogger log(cfg->log.level);
  std::filesystem::path out_dir;
  if (!o.out.empty()) {
    out_dir = o.out;
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) {
      std::cerr << "mailreport send-reports: cannot create " << out_dir.string() << ": "
                << ec.message() << "\n";
      return kExitFailure;
    }
  }
  auto env = make_aggregate_env(*cfg, log);
  if (!env) {
    std::cerr << "mailreport send-reports: " << env.error().message << "\n";
    return kExitConfig;
  }
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("send-reports", store.error());

  const std::int64_t now = o.at > 0 ? o.at : now_seconds();
  outbound::BuildOptions options;
  options.now = now;
  options.close_now = o.now;
  options.domain = o.domain;
  std::uint64_t files = 0;
  if (o.dry_run) {
    options.dry_run = [&](const outbound::BuiltReport& built) -> Status {
      if (out_dir.empty()) return {};
      return write_delivery_files(built, *cfg, out_dir, now, files);
    };
  }
  auto outcomes = build_due(**store, cfg, *env, kinds, options, log);
  int code = kExitOk;
  for (const KindOutcome& k : outcomes) {
    if (!k.enabled) {
      std::cout << k.name << ": not sent (report." << k.name << ".aggregate.send = never)\n";
    } else if (!k.stats) {
      std::cout << k.name << ": failed: " << k.stats.error().message << "\n";
      code = kExitFailure;
    } else {
      std::cout << k.name << ": " << describe(k.name, *k.stats) << "\n";
    }
  }
  if (o.dry_run) {
    std::cout << "dry run: nothing recorded, nothing sent";
    if (!out_dir.empty()) std::cout << "; " << files << " file(s) written to " << out_dir.string();
    std::cout << "\n";
    return code;
  }

  // One outbox pass, as mailreport serve makes: what is due now goes out.
  auto signers = outbound::Signers::load(*cfg);
  if (!signers) {
    std::cerr << "mailreport send-reports: " << signers.error().message << "\n";
    return kExitConfig;
  }
  auto submitter = outbound::make_submitter(cfg->report.submit);
  ::signal(SIGPIPE, SIG_IGN);
  outbound::OutboxRunner runner(cfg, **store, *signers, *submitter, log);
  runner.set_aggregate_sending(env->sending());
  auto st = runner.run_once(now);
  std::cout << "outbox: " << st.sent << " sent, " << st.retried << " to retry, " << st.failed
            << " failed\n";
  return code;
}

}  // namespace

void add_send_reports_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "send-reports", "build the aggregate reports that are due and send them (one outbox pass)");
  auto o = std::make_shared<SendOptions>();
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  cmd->add_flag("--dry-run", o->dry_run, "build the reports, but record and send nothing");
  cmd->add_option("--out", o->out,
                  "with --dry-run: write each delivery here (.eml, or .json.gz for https)");
  cmd->add_option("--domain", o->domain, "only this policy domain");
  cmd->add_flag("--now", o->now,
                "close the current interval now and send its reports at once (no spread)");
  cmd->add_option("--kind", o->kind, "dmarc, tls or all (default)");
  // The clock, for tests (epoch seconds); hidden.
  cmd->add_option("--at", o->at)->group("");
  cmd->callback([&ctx, o] { ctx.exit_code = run_send_reports(ctx, *o); });
}

}  // namespace mailreport::cli
