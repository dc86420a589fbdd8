// mailreport-milter: SPF, DKIM and DMARC verdicts at SMTP time for Postfix (smtpd_milters) and
// Sendmail (INPUT_MAIL_FILTER). It loads the configuration, opens the milter socket
// (milter.socket), reads the DSN signing keys (report.dsn.sign), drops privileges
// (milter.user), opens the store, builds the resolver and the verifiers, and serves until
// SIGTERM/SIGINT: then it stops accepting, lets open sessions end (for a while), writes every
// queued evaluation and exits 0. SIGHUP reloads the configuration (new sessions use it; a few
// keys need a restart and are named in the log).
// Always in the foreground: systemd (or any supervisor) runs it; logs go to stderr.
// systemd readiness (Type=notify): READY=1 once it serves, RELOADING=1/READY=1 around a SIGHUP
// reload, STOPPING=1 when it stops; sd_notify is a no-op when NOTIFY_SOCKET is unset.
//
// Signals: libmilter starts its own thread that takes SIGHUP, SIGTERM and SIGINT and stops the
// milter on each of them. To keep SIGHUP for reloading, this main thread is the only one that
// does not block them and it handles them itself: the kernel hands a process-directed signal to
// the main thread first when that thread does not block it (Linux, complete_signal()). Two
// signals within the same instant may still reach libmilter's thread; the milter then stops as
// for SIGTERM.
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/types.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "mailreport/config/config.hpp"
#include "mailreport/milter/environment.hpp"
#include "mailreport/milter/libmilter.hpp"
#include "mailreport/milter/writer.hpp"
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
constexpr int kExitSoftware = 70;     // resolver or verifiers cannot be built
constexpr int kExitOsErr = 71;        // sockets, privileges
constexpr int kExitConfig = 78;

constexpr const char* kDefaultConfig = "/etc/mailreport/mailreport.toml";
constexpr auto kSessionGrace = std::chrono::seconds(10);

using mailreport::ErrorCode;
using mailreport::make_error;
using mailreport::Status;

// Written by the signal handlers (one byte: the signal number) and by the milter thread when
// smfi_main returns (0).
int g_wake_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
  const int saved = errno;
  const char b = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = ::write(g_wake_pipe[1], &b, 1);
  errno = saved;
}

void print_problems(const std::string& path,
                    const std::vector<mailreport::config::Problem>& problems) {
  for (const auto& p : problems) std::cerr << path << ":" << p.describe() << "\n";
}

// SIGHUP: load the file again; on success build a new environment and hand it to new sessions.
void reload(const std::string& path, mailreport::milter::Sessions& sessions,
            mailreport::Logger& log) {
  using namespace mailreport;
  auto loaded = config::load_file(path);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) log.error("reload", path + ":" + p.describe());
    log.error("reload", "configuration not reloaded; still running with the previous one");
    return;
  }
  const auto running = sessions.environment();
  auto env = milter::make_environment(loaded.config, log, running.get());
  if (!env) {
    log.error("reload", env.error().message + "; still running with the previous configuration");
    return;
  }
  for (const auto& key : milter::restart_only_changes(*running->config, *loaded.config)) {
    log.warning("reload", key + " changed: it takes effect at the next restart");
  }
  sessions.set_environment(std::move(env).value());
  log.info("reload", "configuration reloaded from " + path);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mailreport;

  CLI::App app{
      "mailreport-milter: SPF, DKIM and DMARC verdicts at SMTP time, recorded for "
      "DMARC aggregate reports"};
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
    print_problems(config_path, loaded.problems);
    std::cerr << "mailreport-milter: " << loaded.problems.size()
              << " configuration problem(s), not starting\n";
    return kExitConfig;
  }
  std::shared_ptr<const config::Config> cfg = loaded.config;
  StderrLogger log(cfg->log.level);

  // The signals go to this thread only (see the file comment): handlers that wake the loop
  // below, blocked while the other threads are created so that they inherit the block.
  if (::pipe2(g_wake_pipe, O_CLOEXEC) != 0) {
    log.error("milter", std::string("pipe: ") + std::strerror(errno));
    return kExitOsErr;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    // The sessions are made by a factory that gets its environment and queue once they exist
    // (after the privileges are dropped); no connection is served before run().
    struct Forward final : milter::SessionFactory {
      milter::SessionFactory* target = nullptr;
      std::unique_ptr<milter::Session> create(milter::Actions& a,
                                              milter::SessionOptions o) override {
        return target->create(a, std::move(o));
      }
    } forward;

    milter::Libmilter lm(forward, log);
    milter::ListenOptions lo;
    lo.socket = cfg->milter.socket;
    lo.unix_path = cfg->milter.socket_path;
    lo.mode = cfg->milter.socket_mode;
    lo.owner = cfg->milter.socket_owner;
    lo.group = cfg->milter.socket_group;
    lo.timeout = cfg->milter.timeout;
    if (auto st = lm.open(lo); !st) {
      log.error("milter", st.error().message);
      return kExitOsErr;
    }
    // The DSN signing keys (report.dsn.sign) are read now, while we may still read them.
    auto signers = milter::load_dsn_signers(*cfg);
    if (!signers) {
      log.error("milter", signers.error().message);
      return kExitConfig;
    }
    if (!cfg->milter.user.empty()) {
      if (auto st = drop_privileges(cfg->milter.user, "milter.user", "the milter"); !st) {
        log.error("milter", st.error().message);
        return kExitOsErr;
      }
      log.info("milter", "running as " + cfg->milter.user);
    }

    // The store is opened as the unprivileged user, so that its files belong to the user that
    // keeps writing them (as mailreport-lmtp does).
    auto opened = store::open_configured_store(cfg->store, store::StoreAccess::ReadWrite);
    if (!opened) {
      log.error("milter", "cannot open the store: " + opened.error().describe());
      return kExitUnavailable;
    }
    std::unique_ptr<store::Store> store = std::move(opened).value();

    auto env = milter::make_environment(cfg, log, nullptr, std::move(signers).value());
    if (!env) {
      log.error("milter", env.error().message);
      return kExitSoftware;
    }

    // Writes what this process counts (docs/metrics.md) to the store for mailreport serve's
    // /metrics. Made before the writer, so destroyed after it: the last write has its counts.
    store::MetricsFlusher metrics_flusher(*store, Metrics::process(), log);
    milter::StoreSink sink(*store);
    milter::WriterOptions wo;
    wo.capacity = cfg->milter.queue_size;
    wo.batch_size = cfg->milter.batch_size;
    wo.flush_interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(cfg->milter.flush_interval);
    milter::BackgroundWriter writer(sink, log, wo);
    milter::Sessions sessions(std::move(env).value(), writer, log);
    forward.target = &sessions;

    std::thread serving([&] {
      if (auto st = lm.run(); !st) log.error("milter", st.error().message);
      const char b = 0;
      [[maybe_unused]] ssize_t n = ::write(g_wake_pipe[1], &b, 1);
    });
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    log.info("milter", "ready (store " + store::describe_store(cfg->store) + ")");
    ::sd_notify(0, "READY=1");

    for (bool running = true; running;) {
      char b = 0;
      const ssize_t n = ::read(g_wake_pipe[0], &b, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      switch (b) {
        case SIGHUP:
          log.info("milter", "SIGHUP: reloading " + config_path);
          ::sd_notify(0, "RELOADING=1");
          reload(config_path, sessions, log);
          ::sd_notify(0, "READY=1");
          break;
        case SIGTERM:
        case SIGINT:
          log.info("milter",
                   std::string("received ") + (b == SIGTERM ? "SIGTERM" : "SIGINT") + ", stopping");
          ::sd_notify(0, "STOPPING=1");
          lm.stop();
          running = false;
          break;
        default:  // smfi_main returned on its own
          log.warning("milter", "libmilter stopped");
          running = false;
          break;
      }
    }
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    serving.join();
    const bool idle = lm.wait_idle(kSessionGrace);
    writer.stop();           // writes every queued evaluation
    metrics_flusher.stop();  // the last counts, the writer's included
    const auto stats = writer.stats();
    log.info("milter", "stopped: " + std::to_string(stats.written) + " evaluation(s) written, " +
                           std::to_string(stats.dropped) + " dropped, " +
                           std::to_string(stats.lost) + " lost to store errors");
    if (!idle) {
      // Sessions still running use the objects above: leave without destroying them.
      log.warning("milter", std::to_string(lm.open_sessions()) +
                                " MTA connection(s) still open after " +
                                std::to_string(kSessionGrace.count()) + "s; exiting anyway");
      std::fflush(nullptr);
      ::_exit(kExitOk);
    }
  } catch (const std::exception& e) {
    log.error("milter", std::string("fatal: ") + e.what());
    return kExitFailure;
  }
  return kExitOk;
}
