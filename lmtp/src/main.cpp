// mailreport-lmtp: the RFC 2033 receiver for report mailboxes. It loads the configuration,
// binds the LMTP sockets, drops privileges (lmtp.user), opens the store and serves until
// SIGTERM/SIGINT, then stops gracefully (a message in DATA may finish) and exits 0.
// Always in the foreground: systemd (or any supervisor) runs it; logs go to stderr.
// systemd readiness (Type=notify): READY=1 once it accepts, RELOADING=1/READY=1 around SIGHUP,
// STOPPING=1 when it stops; sd_notify is a no-op when NOTIFY_SOCKET is unset.
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/types.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "mailreport/config/config.hpp"
#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/lmtp/server.hpp"
#include "mailreport/store/metrics_flusher.hpp"
#include "mailreport/store/open_store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/metrics.hpp"
#include "mailreport/util/privileges.hpp"

namespace {

// sysexits.h values.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 64;
constexpr int kExitUnavailable = 69;  // the store cannot be opened
constexpr int kExitOsErr = 71;        // sockets, privileges
constexpr int kExitConfig = 78;

constexpr const char* kDefaultConfig = "/etc/mailreport/mailreport.toml";
constexpr auto kStopGrace = std::chrono::seconds(30);

using mailreport::Error;
using mailreport::ErrorCode;
using mailreport::make_error;
using mailreport::Status;

}  // namespace

int main(int argc, char** argv) {
  using namespace mailreport;

  CLI::App app{"mailreport-lmtp: receives DMARC, TLS-RPT, ARF and DSN reports over LMTP"};
  std::string config_path = kDefaultConfig;
  bool foreground = true;
  app.add_option("-c,--config", config_path,
                 std::string("configuration file (default ") + kDefaultConfig + ")");
  app.add_flag("-f,--foreground", foreground,
               "stay in the foreground (always the case; for service managers)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  auto loaded = config::load_file(config_path);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) std::cerr << config_path << ":" << p.describe() << "\n";
    std::cerr << "mailreport-lmtp: " << loaded.problems.size()
              << " configuration problem(s), not starting\n";
    return kExitConfig;
  }
  std::shared_ptr<const config::Config> cfg = loaded.config;
  StderrLogger log(cfg->log.level);

  // SIGTERM/SIGINT/SIGHUP are taken by sigwait() below: block them before any thread exists
  // so that every thread inherits the mask. SIGPIPE cannot happen on sockets (MSG_NOSIGNAL),
  // but a log pipe may close.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    // The ingestor is created after the privileges are dropped (below); the server only
    // needs it once it accepts, so it holds a forwarding reference until then.
    struct Forward final : ingest::Ingestor {
      ingest::Ingestor* target = nullptr;
      Result<ingest::Outcome> ingest(const ingest::Envelope& e, const Input& m) override {
        return target->ingest(e, m);
      }
    } forward;

    lmtp::Server server(cfg, forward, log);
    if (auto st = server.listen(); !st) {
      log.error("lmtp", st.error().message);
      return kExitOsErr;
    }
    if (!cfg->lmtp.user.empty()) {
      if (auto st = drop_privileges(cfg->lmtp.user, "lmtp.user", "the receiver"); !st) {
        log.error("lmtp", st.error().message);
        return kExitOsErr;
      }
      log.info("lmtp", "running as " + cfg->lmtp.user);
    }

    // The store is opened as the unprivileged user, so that the database and its WAL/SHM
    // files belong to the user that keeps writing them (and that the CLI runs as).
    auto opened = store::open_configured_store(cfg->store, store::StoreAccess::ReadWrite);
    if (!opened) {
      log.error("lmtp", "cannot open the store: " + opened.error().describe());
      return kExitUnavailable;
    }
    ingest::IngestOptions io;
    io.limits.max_decompressed_bytes = cfg->limits.decompressed_size;
    io.limits.max_compression_ratio = cfg->limits.compression_ratio;
    io.temp_dir = lmtp::session_options(*cfg).spool_dir;
    io.suppress_after = cfg->report.suppress_after;
    ingest::StoreIngestor ingestor(**opened, log, io);
    forward.target = &ingestor;
    // Writes what this process counts (docs/metrics.md) to the store for mailreport serve's
    // /metrics; destroyed (a last write) before the store closes.
    store::MetricsFlusher metrics_flusher(**opened, Metrics::process(), log);

    if (auto st = server.start(); !st) {
      log.error("lmtp", st.error().message);
      return kExitOsErr;
    }
    log.info("lmtp", "ready (store " + store::describe_store(cfg->store) + ")");
    ::sd_notify(0, "READY=1");

    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        // Tell systemd the reload (ExecReload sends SIGHUP) is done, so that it does not wait.
        ::sd_notify(0, "RELOADING=1");
        log.info("lmtp", "SIGHUP: configuration reload is not supported; restart instead");
        ::sd_notify(0, "READY=1");
        continue;
      }
      log.info("lmtp",
               std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
      break;
    }
    ::sd_notify(0, "STOPPING=1");
    server.stop(kStopGrace);
    metrics_flusher.stop();  // after the last session: its counts are in the last write
  } catch (const std::exception& e) {
    log.error("lmtp", std::string("fatal: ") + e.what());
    return kExitFailure;
  }
  return kExitOk;
}
