// mailreport serve [--once]: the long-running job that builds the aggregate reports and sends
// the reports in the outbox.
//
// Start-up, the Postfix way: load the configuration, read every signing key
// (signature.<id>.private-key, often readable by root only), switch to serve.user if set
// (drop_privileges refuses to go on as root), then open the store as that user. Then:
//   - the TLS result collector (ingest::TlsrptCollector) in its own thread, when tlsrpt.listen
//     is set: the MTA's libtlsrpt datagrams counted in the store;
//   - every serve.outbox-interval, a tick: at most once a minute the aggregate builders (DMARC
//     and TLS, outbound::AggregateBuilder) build what is due (each interval once, in order,
//     missed ones after downtime too; the collector is flushed first so that the day's last
//     results are in), then one outbox pass (outbound::OutboxRunner: build the message,
//     DKIM-sign, submit through report.submit or POST to an https rua, record the outcome);
//   - at start and then once a day, retention: what is older than report.analysis.store is
//     purged (Store::purge, as `mailreport purge` does);
//   - warnings and webhooks (alerts::AlertService, its own thread) when alerts.enable is on or
//     a webhook is configured: the rules every alerts.interval, webhook delivery with retries
//     (docs/alerts.md); SIGHUP hands it the new configuration.
//   - the dashboard, JSON API and /metrics (web::HttpServer, its own threads) when
//     dashboard.listen is set: see DashboardListener below; SIGHUP re-reads its token.
//
// Signals: SIGTERM and SIGINT end the pass after the entry being sent, stop the collector
// (which commits what it holds) and exit 0; SIGHUP reloads the configuration and the signing
// keys (keeping the old ones, with an error in the log, when the new ones do not load: after
// dropping privileges, keys readable by root only cannot be read again — restart for those).
// store.path, serve.user and tlsrpt.* are read at start only.
// systemd: READY=1, RELOADING=1, STOPPING=1 through sd_notify (a no-op without NOTIFY_SOCKET).
//
// --once: builds what is due, one outbox pass, one alert scan and webhook pass, then exit
// (tests, cron); no collector.
#include <pthread.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "cli.hpp"
#include "commands/aggregate_util.hpp"
#include "commands/store_util.hpp"
#include "mailreport/alerts/webhooks.hpp"
#include "mailreport/ingest/tlsrpt_collector.hpp"
#include "mailreport/outbound/outbox_runner.hpp"
#include "mailreport/outbound/signer.hpp"
#include "mailreport/outbound/submit.hpp"
#include "mailreport/store/metrics_flusher.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/metrics.hpp"
#include "mailreport/util/privileges.hpp"
#include "mailreport/web/dashboard.hpp"
#include "mailreport/web/http_server.hpp"

namespace mailreport::cli {

namespace {

constexpr std::size_t kBatch = 10;  // entries per claim: bounds the lease a stop leaves behind
// How often the builders look for due intervals (at most; a tick is serve.outbox-interval).
constexpr std::int64_t kBuildEvery = 60;
// How often retention runs.
constexpr std::int64_t kPurgeEvery = 86400;

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the signal thread tells the main loop.
struct Signals {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stop{false};
  bool reload = false;  // under mu
};

// The signals the signal thread takes.
sigset_t serve_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, sig);
  return set;
}

// Blocks them in the calling thread, and so in every thread it starts later (the resolver's,
// libcurl's, the collector's): only the signal thread may take them.
void block_serve_signals() {
  const sigset_t set = serve_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Waits for SIGTERM, SIGINT and SIGHUP (blocked in every thread) and hands them to the main
// loop; SIGUSR1 (sent by the main thread to this one) ends it.
class SignalThread {
 public:
  explicit SignalThread(Signals& s) : s_(s), set_(serve_signals()) {
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { run(); });
  }
  ~SignalThread() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  void run() {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      {
        std::lock_guard lock(s_.mu);
        if (sig == SIGHUP) {
          s_.reload = true;
        } else {
          s_.stop = true;
        }
      }
      s_.cv.notify_all();
    }
  }

  Signals& s_;
  sigset_t set_{};
  std::thread thread_;
};

// The configuration and what is built from it; replaced whole on SIGHUP.
struct Setup {
  std::shared_ptr<const config::Config> config;
  outbound::Signers signers;
  std::unique_ptr<outbound::Submitter> submitter;
  AggregateEnv aggregate;  // resolver and DMARC evaluator of the builders
};

Result<Setup> make_setup(std::shared_ptr<const config::Config> cfg, Logger& log) {
  auto signers = outbound::Signers::load(*cfg);
  if (!signers) return std::move(signers).error();
  auto aggregate = make_aggregate_env(*cfg, log);
  if (!aggregate) return std::move(aggregate).error();
  Setup s{std::move(cfg), std::move(*signers), nullptr, std::move(*aggregate)};
  s.submitter = outbound::make_submitter(s.config->report.submit);
  return s;
}

// The builders, for everything due now (the builder logs each interval it builds).
void build(Setup& setup, store::Store& store, Logger& log, ingest::TlsrptCollector* collector) {
  // The collector's pending results belong in the day they were received: commit them first.
  if (collector != nullptr) collector->flush();
  outbound::BuildOptions options;
  options.now = now_seconds();
  (void)build_due(store, setup.config, setup.aggregate, AggregateKinds::All, options, log);
}

// Retention (report.analysis.store); a failure is logged and tried again the next day.
void purge(const config::Config& config, store::Store& store, Logger& log) {
  const std::int64_t before = now_seconds() - config.report.analysis_retention.count();
  auto r = store.purge(before);
  if (!r) {
    log.error("serve", "retention: " + r.error().describe());
    return;
  }
  const std::uint64_t total = r->reports + r->raw_messages + r->evaluation_rows + r->tls_counts +
                              r->outbox_entries + r->aggregate_reports;
  if (total == 0) return;
  log.info("serve", "retention (" + config::format_duration(config.report.analysis_retention) +
                        "): removed " + std::to_string(r->reports) + " report(s), " +
                        std::to_string(r->raw_messages) + " raw message(s), " +
                        std::to_string(r->evaluation_rows) + " evaluation row(s), " +
                        std::to_string(r->tls_counts) + " TLS count(s), " +
                        std::to_string(r->outbox_entries) + " outbox entries, " +
                        std::to_string(r->aggregate_reports) + " sent aggregate report(s)");
}

void pass(Setup& setup, store::Store& store, Logger& log, const std::atomic<bool>* stop) {
  outbound::OutboxRunner runner(setup.config, store, setup.signers, *setup.submitter, log);
  runner.set_stop_flag(stop);
  runner.set_aggregate_sending(setup.aggregate.sending());
  auto st = runner.run_once(now_seconds(), kBatch);
  if (st.sent + st.retried + st.failed > 0) {
    log.info("serve", "outbox pass: " + std::to_string(st.sent) + " sent, " +
                          std::to_string(st.retried) + " to retry, " + std::to_string(st.failed) +
                          " failed");
  }
}

// Warnings and webhooks (issue 6): wanted when alerts are on or a webhook is configured.
bool alerts_wanted(const config::Config& c) {
  return c.alerts.enable || !c.webhooks.empty();
}

// --once: one scan and one delivery pass (a Conflict means another node scanned first).
void alerts_once(std::shared_ptr<const config::Config> cfg, store::Store& store, Logger& log) {
  if (!alerts_wanted(*cfg)) return;
  auto warnings = alerts::make_syslog_warning_log();
  if (cfg->alerts.enable) {
    alerts::AlertScanner scanner(cfg, store, log, *warnings);
    auto st = scanner.run_once(now_seconds());
    if (!st && st.error().code != ErrorCode::Conflict) {
      log.warning("alerts", "scan failed: " + st.error().describe());
    }
  }
  alerts::WebhookDispatcher dispatcher(cfg, store, log);
  auto d = dispatcher.run_once(now_seconds() * 1000);
  if (!d) log.warning("webhook", "delivery failed: " + d.error().describe());
}

// The dashboard, JSON API and /metrics (issue 6; docs/dashboard.md) when dashboard.listen is
// set. Refused without a token unless dashboard.allow-no-token (and then on loopback only),
// and on a non-loopback address unless dashboard.allow-non-loopback (TLS belongs to a reverse
// proxy). The listener binds before privileges are dropped only when its port is below 1024;
// otherwise after, as serve.user. Requests run on the server's threads against the store;
// detach() (before the store closes) waits for those in flight and answers 503 after. SIGHUP:
// reload() re-reads the token (keeping the old one when the new one does not load: a token
// file readable by root only cannot be read after dropping privileges) and the configuration.
class DashboardListener {
 public:
  static Result<std::unique_ptr<DashboardListener>> create(
      const std::shared_ptr<const config::Config>& cfg) {
    const auto& d = cfg->dashboard;
    auto token = web::load_dashboard_token(d);
    if (!token) return std::move(token).error();
    // The configuration refused a non-loopback listen address without allow-non-loopback,
    // and allow-no-token on one (config.cpp); what is left is a missing token.
    if (token->empty() && !d.allow_no_token) {
      return make_error(ErrorCode::Invalid,
                        "dashboard: set dashboard.token or dashboard.token-file (or "
                        "dashboard.allow-no-token, on a loopback address only)");
    }
    auto self = std::make_unique<DashboardListener>();
    self->config_ = cfg;
    self->token_ = std::move(*token);
    return self;
  }

  static bool privileged_port(const config::Config& c) {
    const std::string port = c.dashboard.listen.substr(c.dashboard.listen.rfind(':') + 1);
    // Digits only ("" or junk: not privileged; HttpServer::start rejects it with a message).
    return !port.empty() && port.size() < 4 &&
           port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) < 1024;
  }

  Status listen(Logger& log) {
    web::ServerOptions options;
    options.listen = config_->dashboard.listen;
    options.max_connections = config_->dashboard.max_connections;
    options.timeout = config_->dashboard.timeout;
    options.max_body = 64 << 10;  // read-only API: requests carry no body worth reading
    auto server = web::HttpServer::start(options, [this](const web::Request& r) {
      std::shared_lock lock(handler_mu_);
      if (!handler_) return web::Response::error(503, "starting or stopping");
      return handler_(r);
    });
    if (!server) return std::move(server).error();
    server_ = std::move(*server);
    std::string host = options.listen.substr(0, options.listen.rfind(':'));
    log.info("serve", "dashboard on http://" + host + ":" + std::to_string(server_->port()) + "/");
    return {};
  }

  void attach(store::Store& store) {
    web::DashboardContext c;
    c.store = &store;
    c.config = [this] {
      std::lock_guard lock(mu_);
      return config_;
    };
    c.token = [this] {
      std::lock_guard lock(mu_);
      return token_;
    };
    std::unique_lock lock(handler_mu_);
    handler_ = web::make_dashboard_handler(std::move(c));
  }
  void detach() {
    std::unique_lock lock(handler_mu_);
    handler_ = nullptr;
  }
  ~DashboardListener() {
    detach();
    server_.reset();
  }

  void reload(std::shared_ptr<const config::Config> fresh, Logger& log) {
    if (fresh->dashboard.listen != config_->dashboard.listen) {
      log.warning("serve", "reload: dashboard.listen takes effect at restart");
    }
    auto token = web::load_dashboard_token(fresh->dashboard);
    std::lock_guard lock(mu_);
    if (!token) {
      log.error("serve", "reload: keeping the dashboard token: " + token.error().message);
    } else if (token->empty() && !fresh->dashboard.allow_no_token) {
      log.error("serve", "reload: keeping the dashboard token: none is configured");
    } else {
      token_ = std::move(*token);
    }
    config_ = std::move(fresh);
  }

 private:
  std::mutex mu_;  // config_ and token_
  std::shared_ptr<const config::Config> config_;
  std::string token_;
  std::shared_mutex handler_mu_;  // held shared by requests, exclusive to (de)tach
  web::Handler handler_;
  std::unique_ptr<web::HttpServer> server_;
};

int run_serve(const Context& ctx, bool once) {
  auto cfg = ctx.load_config();
  StderrLogger log(cfg->log.level);
  // Before any thread starts (make_setup's resolver has its own).
  if (!once) block_serve_signals();
  // Keys first, as the user that started us (root under systemd if serve.user is set).
  auto setup = make_setup(cfg, log);
  if (!setup) {
    log.error("serve", setup.error().message);
    return kExitConfig;
  }
  // The dashboard: checked now; bound now only for a port below 1024 (see DashboardListener).
  // A dashboard the file asks for (dashboard.listen set) must start; the built-in default
  // (127.0.0.1:8470) is skipped with an error in the log when it has no token or its port is
  // taken, so that reports are still sent.
  const bool dashboard_asked = cfg->get("dashboard.listen").has_value();
  std::unique_ptr<DashboardListener> dashboard;
  auto dashboard_failed = [&](const Error& e) {
    if (dashboard_asked) return true;
    log.error("serve",
              "dashboard not started: " + e.message + " (dashboard.listen = \"\" turns it off)");
    dashboard.reset();
    return false;
  };
  if (!once && !cfg->dashboard.listen.empty()) {
    auto d = DashboardListener::create(cfg);
    if (!d) {
      if (dashboard_failed(d.error())) {
        log.error("serve", d.error().message);
        return kExitConfig;
      }
    } else {
      dashboard = std::move(*d);
      if (DashboardListener::privileged_port(*cfg)) {
        if (auto st = dashboard->listen(log); !st && dashboard_failed(st.error())) {
          return fail("serve", st.error());
        }
      }
    }
  }
  if (!cfg->serve.user.empty()) {
    if (auto st = drop_privileges(cfg->serve.user, "serve.user", "mailreport serve"); !st) {
      log.error("serve", st.error().message);
      return kExitConfig;
    }
    log.info("serve", "running as " + cfg->serve.user);
  }
  // Opened as the unprivileged user, so that the store's WAL/SHM files stay its own.
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("serve", store.error());
  // What this process counts (outbox, aggregate builds, TLS collector; docs/metrics.md) goes
  // to the store for /metrics; declared after the store, so its last write comes first.
  mailreport::store::MetricsFlusher metrics_flusher(**store, Metrics::process(), log);
  // The dashboard's requests stop reaching the store before it closes (declared after it).
  struct DetachDashboard {
    DashboardListener* d;
    ~DetachDashboard() {
      if (d != nullptr) d->detach();
    }
  } detach_dashboard{dashboard.get()};
  if (dashboard && !DashboardListener::privileged_port(*cfg)) {
    if (auto st = dashboard->listen(log); !st && dashboard_failed(st.error())) {
      return fail("serve", st.error());
    }
  }
  detach_dashboard.d = dashboard.get();
  if (dashboard) dashboard->attach(**store);
  // The submitter's children and sockets must never kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);

  if (once) {
    build(*setup, **store, log, nullptr);
    pass(*setup, **store, log, nullptr);
    alerts_once(cfg, **store, log);
    return kExitOk;
  }

  Signals signals;
  SignalThread signal_thread(signals);
  // The collector's socket is made as the unprivileged user, so that it owns it.
  std::unique_ptr<ingest::TlsrptCollector> collector;
  if (!cfg->tlsrpt.listen.empty()) {
    try {
      collector = std::make_unique<ingest::TlsrptCollector>(cfg->tlsrpt, **store, log,
                                                            [] { return now_seconds(); });
    } catch (const std::runtime_error& e) {
      log.error("serve", std::string("tlsrpt.listen: ") + e.what());
      return kExitConfig;
    }
    log.info("serve", "collecting TLS results on " + cfg->tlsrpt.listen.string());
  }
  // Joined before the collector goes (declared after it): stops with signals.stop.
  std::jthread collector_thread;
  if (collector) {
    collector_thread = std::jthread([&collector, &signals] { collector->run(signals.stop); });
  }
  // Warnings and webhooks in their own thread; stops with signals.stop (below), joined first.
  std::unique_ptr<alerts::AlertService> alert_service;
  std::jthread alert_thread;
  if (alerts_wanted(*cfg)) {
    alert_service = std::make_unique<alerts::AlertService>(cfg, **store, log,
                                                           alerts::make_syslog_warning_log());
    alert_thread = std::jthread([&alert_service, &signals] { alert_service->run(signals.stop); });
  }
  // However the loop ends, the collector thread is told to stop before it is joined.
  struct StopOnExit {
    Signals& s;
    ~StopOnExit() { s.stop = true; }
  } stop_on_exit{signals};
  log.info("serve",
           "sending the outbox every " + config::format_duration(cfg->serve.outbox_interval));
  ::sd_notify(0, "READY=1");
  std::int64_t next_build = 0;
  std::int64_t next_purge = 0;
  for (;;) {
    if (const std::int64_t now = now_seconds(); now >= next_purge) {
      purge(*setup->config, **store, log);
      next_purge = now + kPurgeEvery;
    }
    if (const std::int64_t now = now_seconds(); now >= next_build) {
      build(*setup, **store, log, collector.get());
      next_build = now + kBuildEvery;
    }
    if (signals.stop) break;
    pass(*setup, **store, log, &signals.stop);
    std::unique_lock lock(signals.mu);
    signals.cv.wait_for(lock, setup->config->serve.outbox_interval,
                        [&] { return signals.stop.load() || signals.reload; });
    if (signals.stop) break;
    if (signals.reload) {
      signals.reload = false;
      lock.unlock();
      ::sd_notify(0, "RELOADING=1");
      try {
        auto fresh = ctx.load_config();
        auto next = make_setup(fresh, log);
        if (!next) {
          log.error("serve", "reload: keeping the running configuration: " + next.error().message);
        } else {
          const auto& a = fresh->tlsrpt;
          const auto& b = setup->config->tlsrpt;
          if (fresh->store.path != setup->config->store.path ||
              fresh->serve.user != setup->config->serve.user || a.listen != b.listen ||
              a.socket_mode != b.socket_mode || a.socket_group != b.socket_group ||
              a.flush_interval != b.flush_interval || a.batch_size != b.batch_size) {
            log.warning("serve",
                        "reload: store.path, serve.user and tlsrpt.* take effect at restart");
          }
          setup = std::move(next);
          if (dashboard) dashboard->reload(fresh, log);
          if (alert_service) {
            alert_service->set_config(fresh);
          } else if (alerts_wanted(*fresh)) {
            log.warning("serve", "reload: alerts and webhooks start at restart");
          }
          log.info("serve", "configuration reloaded");
        }
      } catch (const ConfigError& e) {
        log.error("serve", std::string("reload: keeping the running configuration: ") + e.what());
      }
      ::sd_notify(0, "READY=1");
    }
  }
  ::sd_notify(0, "STOPPING=1");
  if (alert_thread.joinable()) alert_thread.join();
  if (collector_thread.joinable()) collector_thread.join();  // commits what it holds
  log.info("serve", "stopped");
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "serve", "build the aggregate reports, collect TLS results, send the outbox (long-running)");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto once = std::make_shared<bool>(false);
  cmd->add_flag("--once", *once, "build what is due, one outbox pass, then exit");
  cmd->callback([&ctx, once] { ctx.exit_code = run_serve(ctx, *once); });
}

}  // namespace mailreport::cli
