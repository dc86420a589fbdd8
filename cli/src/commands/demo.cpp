// `mailreport demo`: the Quick start's main job on the embedded default. It writes a
// configuration into a local state folder (SQLite store, LMTP on a unix socket there and on
// 127.0.0.1), starts the LMTP receiver in-process, delivers the bundled sample reports over
// LMTP as Postfix's lmtp client would (plus one of them again, to show de-duplication),
// prints what the store now holds, and serves until SIGINT/SIGTERM (or exits with --once).
// While serving, the dashboard (web::HttpServer + the dashboard handler) listens on
// 127.0.0.1:--dashboard-port (a free port when taken) with a random token made by OpenSSL's
// RAND_bytes, printed with the URL, so that the page can be seen at once.
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/lmtp/client.hpp"
#include "mailreport/lmtp/server.hpp"
#include "mailreport/mime/header.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/web/dashboard.hpp"
#include "mailreport/web/http_server.hpp"
#include "samples.hpp"

namespace mailreport::cli {

namespace {

struct DemoOptions {
  std::filesystem::path state_dir = ".state/demo";
  std::uint16_t port = 2424;
  std::uint16_t dashboard_port = 8470;
  bool once = false;
  bool keep = false;
};

std::string demo_config(const std::filesystem::path& dir, std::uint16_t port) {
  return "# Written by `mailreport demo`. Use it with the other commands, e.g.\n"
         "#   mailreport -c " +
         (dir / "mailreport.toml").string() +
         " list dmarc\n\n"
         "[report]\n"
         "domain = \"example.com\"\n"
         "submitter = \"mx.example.com\"\n\n"
         "[report.analysis]\n"
         "addresses = [\"dmarc@*\", \"tlsrpt@*\", \"abuse@*\", \"postmaster@*\"]\n\n"
         "[store]\n"
         "path = \"" +
         (dir / "mailreport.db").string() +
         "\"\n\n"
         "[lmtp]\n"
         "hostname = \"mailreport-demo.localhost\"\n"
         "unix-socket = \"" +
         (dir / "lmtp.sock").string() +
         "\"\n"
         "tcp = \"127.0.0.1:" +
         std::to_string(port) + "\"\n";
}

// Envelope of a sample as an MTA would have it: Return-Path (else From) and To.
std::pair<std::string, std::vector<std::string>> envelope_of(std::string_view message) {
  auto end = message.find("\n\n");
  auto fields = mime::parse_header_fields(message.substr(0, end));
  auto address = [](std::string v) {
    auto lt = v.find('<');
    auto gt = v.find('>', lt == std::string::npos ? 0 : lt);
    if (lt != std::string::npos && gt != std::string::npos) v = v.substr(lt + 1, gt - lt - 1);
    return v;
  };
  std::string from;
  if (const auto* rp = mime::find_field(fields, "Return-Path")) {
    from = address(rp->value);
  } else if (const auto* f = mime::find_field(fields, "From")) {
    from = address(f->value);
  }
  std::vector<std::string> to;
  for (const auto& v : mime::all_values(fields, "To")) to.push_back(address(v));
  return {from, to};
}

void print_summary(const store::Summary& s) {
  std::cout << "\nWhat the store holds now:\n  reports by type:";
  for (const auto& [type, n] : s.reports_by_type)
    std::cout << "  " << report::to_string(type) << " " << n;
  std::cout << "\n  top reporting organisations:\n";
  for (const auto& [org, n] : s.top_orgs) {
    std::cout << "    " << (org.empty() ? "(unnamed)" : org) << ": " << n << " report"
              << (n == 1 ? "" : "s") << "\n";
  }
  std::cout << "  DMARC messages reported: " << s.dmarc_messages << " (pass " << s.dmarc_pass
            << ", fail " << s.dmarc_fail << ")\n"
            << "  TLS sessions reported: " << s.tls_sessions_ok << " successful, "
            << s.tls_sessions_failed << " failed\n"
            << "  raw messages kept: " << s.raw_messages << " (" << s.unparsed_messages
            << " without a report, kept with the reason)\n";
}

// 128 random bits, hex: the demo dashboard's bearer token.
std::string random_token() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// The dashboard over the demo's store on 127.0.0.1 (the port asked for, else a free one).
std::unique_ptr<web::HttpServer> start_dashboard(const DemoOptions& opt, store::Store& store,
                                                 std::shared_ptr<const config::Config> cfg,
                                                 const std::string& token) {
  web::DashboardContext c;
  c.store = &store;
  c.config = [cfg] { return cfg; };
  c.token = [token] { return token; };
  web::Handler handler = web::make_dashboard_handler(std::move(c));
  for (std::uint16_t port : {opt.dashboard_port, std::uint16_t{0}}) {
    web::ServerOptions options;
    options.listen = "127.0.0.1:" + std::to_string(port);
    auto server = web::HttpServer::start(options, handler);
    if (server) return std::move(*server);
    if (port == 0) {
      std::cerr << "mailreport demo: no dashboard: " << server.error().describe() << "\n";
      return nullptr;
    }
    std::cerr << "mailreport demo: dashboard port " << port << " is taken; using a free one\n";
  }
  return nullptr;
}

int run_demo(const DemoOptions& opt) {
  namespace fs = std::filesystem;
  // Signals are taken by sigwait() at the end: block them before any thread exists.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  fs::path dir = fs::absolute(opt.state_dir).lexically_normal();
  fs::create_directories(dir);
  if (!opt.keep) {
    for (const char* f : {"mailreport.db", "mailreport.db-wal", "mailreport.db-shm"})
      fs::remove(dir / f);
  }
  StderrLogger log(LogLevel::Warning);  // the narrative is on stdout; problems on stderr

  std::shared_ptr<const config::Config> cfg;
  std::unique_ptr<lmtp::Server> server;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<ingest::StoreIngestor> ingestor;
  // The configured port, or any free one (port 0: the kernel's choice) when it is taken or
  // when --port 0 asks for it. The file left in the state folder names the port bound.
  for (std::uint16_t port : {opt.port, std::uint16_t{0}}) {
    auto loaded = config::load_string(demo_config(dir, port), dir / "mailreport.toml");
    if (!loaded.problems.empty()) {
      for (const auto& p : loaded.problems) std::cerr << p.describe() << "\n";
      return kExitSoftware;
    }
    cfg = loaded.config;
    if (!store) {
      auto opened = store::open_sqlite_store({.path = cfg->store.path});
      if (!opened) {
        std::cerr << "mailreport demo: " << opened.error().describe() << "\n";
        return kExitFailure;
      }
      store = std::move(*opened);
      ingest::IngestOptions io;
      io.limits.max_decompressed_bytes = cfg->limits.decompressed_size;
      io.limits.max_compression_ratio = cfg->limits.compression_ratio;
      ingestor = std::make_unique<ingest::StoreIngestor>(*store, log, io);
    }
    server = std::make_unique<lmtp::Server>(cfg, *ingestor, log);
    auto started = server->start();
    if (started) break;
    server.reset();
    if (port == 0) {
      std::cerr << "mailreport demo: " << started.error().describe() << "\n";
      return kExitFailure;
    }
    std::cerr << "mailreport demo: port " << port << " is taken (" << started.error().message
              << "); using a free one\n";
  }
  const std::uint16_t port = server->bound_port();
  std::ofstream(dir / "mailreport.toml") << demo_config(dir, port);
  std::cout << "mailreport demo: LMTP receiver on 127.0.0.1:" << port << " and "
            << server->socket_path().string() << ", store " << cfg->store.path.string() << "\n\n"
            << "Delivering the sample reports over LMTP:\n";

  auto client = lmtp::Client::connect_tcp("127.0.0.1", port);
  if (!client) {
    std::cerr << "mailreport demo: " << client.error().describe() << "\n";
    return kExitFailure;
  }
  if (auto st = client->hello("mta.demo.localhost"); !st) {
    std::cerr << "mailreport demo: " << st.error().describe() << "\n";
    return kExitFailure;
  }
  const auto& samples = bundled_samples();
  std::vector<const Sample*> deliveries;
  for (const auto& s : samples) deliveries.push_back(&s);
  if (!samples.empty()) deliveries.push_back(&samples.front());  // again: a duplicate
  int failures = 0;
  for (const Sample* s : deliveries) {
    auto [from, to] = envelope_of(s->message);
    auto replies = client->deliver(from, to, s->message);
    if (!replies) {
      std::cerr << "  " << s->name << ": " << replies.error().describe() << "\n";
      ++failures;
      continue;
    }
    for (const auto& r : *replies) {
      std::cout << "  " << s->name << " -> " << r.recipient << ": " << r.reply.code << " "
                << r.reply.text << "\n";
      if (!r.reply.positive()) ++failures;
    }
  }
  client->quit();

  auto summary = store->summary(5);
  if (!summary) {
    std::cerr << "mailreport demo: " << summary.error().describe() << "\n";
    return kExitFailure;
  }
  print_summary(*summary);
  std::cout << "\nTry: mailreport -c " << (dir / "mailreport.toml").string()
            << " list dmarc   (or list tls|arf|dsn, show ID, export --format csv)\n";
  if (failures > 0) std::cerr << "mailreport demo: " << failures << " delivery(ies) failed\n";

  std::unique_ptr<web::HttpServer> dashboard;
  if (!opt.once) {
    const std::string token = random_token();
    if (!token.empty()) dashboard = start_dashboard(opt, *store, cfg, token);
    if (dashboard) {
      const std::string url = "http://127.0.0.1:" + std::to_string(dashboard->port()) + "/";
      std::cout << "\nDashboard: " << url << "  (token " << token << ")\n"
                << "  API: curl -H 'Authorization: Bearer " << token << "' " << url
                << "api/v1/summary\n";
    }
    std::cout
        << "Serving until interrupted (Ctrl-C); deliver more with any LMTP client to 127.0.0.1:"
        << port << ".\n"
        << std::flush;
    int sig = 0;
    sigwait(&signals, &sig);
    std::cout << "\nmailreport demo: stopping\n";
  }
  dashboard.reset();  // before the store closes
  server->stop();
  return failures == 0 ? kExitOk : kExitFailure;
}

}  // namespace

void add_demo_command(CLI::App& app, Context& ctx) {
  auto opt = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Run the LMTP receiver on loopback with a local SQLite store, deliver the bundled "
      "sample reports over LMTP, print what was stored, and keep serving");
  cmd->add_option("--state-dir", opt->state_dir, "folder for the demo's store, socket and config")
      ->capture_default_str();
  cmd->add_option("--port", opt->port, "TCP port on 127.0.0.1 (a free one if taken)")
      ->capture_default_str();
  cmd->add_option("--dashboard-port", opt->dashboard_port,
                  "dashboard port on 127.0.0.1 (a free one if taken)")
      ->capture_default_str();
  cmd->add_flag("--once", opt->once, "exit after the summary instead of serving");
  cmd->add_flag("--keep", opt->keep, "keep the store of an earlier demo run");
  cmd->callback([opt, &ctx] { ctx.exit_code = run_demo(*opt); });
}

}  // namespace mailreport::cli
