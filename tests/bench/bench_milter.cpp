// bench-milter: messages through the milter protocol (tests/support/milter_client.hpp) to a real
// filter process, with 1, 4 and 16 concurrent connections, over a unix socket and loopback
// TCP, for three filters:
//   noop     tests/bench/noop_milter.cpp, libmilter receiving every message and accepting it,
//            with no reply before end of message (as mailreport-milter): the floor;
//   noop-replies  the same answering every step (libmilter's default dialect), on request;
//   opendkim OpenDKIM 2.11 (Debian package opendkim) verifying the same messages, the key
//            read from a file (TestPublicKeys), on request:
//            the issue's yardstick ("OpenDKIM alone costs about 2.5 times" the floor);
//   full     mailreport-milter verifying SPF (mfrom + helo), DKIM (rsa-sha256, 2048 bits) and
//            DMARC, adding Authentication-Results and recording the evaluation (SQLite store);
//            its DNS answers come from dns.local-data (local-only), i.e. a warm cache;
//   trusted  mailreport-milter in trusted upstream mode: each message carries an
//            Authentication-Results from an authserv-id in milter.trust-authserv-ids, so SPF
//            and DKIM are taken from it and only DMARC is evaluated.
// Each message is one MTA connection: connect, option negotiation, CONNECT, HELO, MAIL, RCPT,
// headers, body, end of message, QUIT. Messages (~4 KB, DKIM-signed with a key made at start)
// are generated before the clock starts; source addresses vary over 192.0.2.0/24.
//
// Figures per run: messages per second, added latency (socket connect → end-of-message reply)
// p50 and p99, the filter process's CPU time per message (utime + stime from /proc/PID/stat,
// after its store writer has flushed), its ratio to the floor's, and the load client's own CPU
// time per message (to show that the client is not the bottleneck). Before each measurement
// a warm-up pass checks the filter's answer (full/trusted: dkim=pass, dmarc=pass in our A-R).
//
//   bench-milter [--messages N] [--connections 1,4,16] [--transports unix,tcp]
//                [--filters noop,full,trusted] [--rounds N] [--keep]
#include <sys/resource.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../unit/auth/dkim_test_keys.hpp"
#include "child_process.hpp"
#include "milter_client.hpp"

namespace {

using namespace mailreport;
using namespace std::chrono;
using test::ChildProcess;
using test::MilterAction;
using test::MilterClient;
using test::MilterMessage;
using test::MilterSession;

constexpr const char* kDomain = "bench.example";
constexpr const char* kSelector = "bench";
constexpr const char* kOurId = "mx.receiver.example";
constexpr const char* kUpstreamId = "upstream.receiver.example";
constexpr std::size_t kDistinctMessages = 200;

std::filesystem::path binary_dir() {
  return MAILREPORT_BINARY_DIR;
}

std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

microseconds own_cpu() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) { return microseconds(t.tv_sec * 1000000LL + t.tv_usec); };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

// The generated messages: DKIM-signed by bench.example; `trusted` adds an upstream A-R.
struct Corpus {
  test::dkim::TestKey key = test::dkim::make_key(false, 2048);
  std::vector<MilterMessage> plain;
  std::vector<MilterMessage> trusted;

  Corpus() {
    std::string filler;
    for (int i = 0; filler.size() < 4000; ++i) {
      filler += "Line " + std::to_string(i) +
                " of a message body that is long enough to look like real mail.\r\n";
    }
    for (std::size_t n = 0; n < kDistinctMessages; ++n) {
      test::dkim::TestMessage m;
      std::string id = "<bench-" + std::to_string(n) + "@" + kDomain + ">";
      m.headers = {
          {"From", std::string("Sender <sender@") + kDomain + ">"},
          {"To", "user@receiver.example"},
          {"Subject", "benchmark message " + std::to_string(n)},
          {"Date", "Fri, 21 Nov 2025 10:00:00 +0000"},
          {"Message-ID", id},
          {"MIME-Version", "1.0"},
          {"Content-Type", "text/plain; charset=us-ascii"},
      };
      m.body = "Message " + std::to_string(n) + "\r\n" + filler;
      test::dkim::SignOptions so;
      so.selector = kSelector;
      so.domain = kDomain;
      m.prepend("DKIM-Signature", test::dkim::sign(m, key, so));
      auto mm = MilterMessage::from_rfc5322(m.raw());
      mm.mail_from = std::string("<sender@") + kDomain + ">";
      mm.rcpt_to = {"<user@receiver.example>"};
      mm.eom_macros = {{"i", "Q" + std::to_string(n)}};
      plain.push_back(mm);
      // RFC 8601: what an OpenDKIM/OpenDMARC in front of us would have written.
      mm.headers.insert(mm.headers.begin(),
                        {"Authentication-Results",
                         std::string(kUpstreamId) + ";\n\tspf=pass smtp.mailfrom=" + kDomain +
                             ";\n\tdkim=pass header.d=" + kDomain + " header.s=" + kSelector +
                             " header.i=@" + kDomain});
      trusted.push_back(std::move(mm));
    }
  }

  // As a recursive resolver would answer: the NXDOMAIN for _dmarc.example (the DMARC tree
  // walk's last step, RFC 9989 §4.10) carries the zone's SOA, so it can be cached
  // (RFC 2308 §5); a local zone without a SOA would answer a bare, uncacheable NXDOMAIN.
  std::vector<std::string> local_data() const {
    return {
        "example. 300 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 300",
        std::string(kDomain) + ". 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
        std::string("mail.") + kDomain + ". 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
        std::string("_dmarc.") + kDomain + ". 300 IN TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@" +
            kDomain + "\"",
        test::dkim::txt_line(std::string(kSelector) + "._domainkey." + kDomain, key.record()),
    };
  }
};

struct Scenario {
  std::string filter;     // noop | full | trusted
  std::string transport;  // unix | tcp
};

struct Figures {
  std::size_t messages = 0;
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double filter_cpu_us = 0;  // per message
  double client_cpu_us = 0;  // per message
  std::size_t errors = 0;
};

// One filter process listening on one address.
class Server {
 public:
  Server(const Scenario& s, const Corpus& corpus, const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    address_ = s.transport == "tcp" ? "inet:" + std::to_string(free_loopback_port()) + "@127.0.0.1"
                                    : "unix:" + (dir / "milter.sock").string();
    std::vector<std::string> argv;
    if (s.filter == "noop" || s.filter == "noop-replies") {
      argv = {(binary_dir() / "tests" / "noop-milter").string(), "-p", address_};
      if (s.filter == "noop-replies") argv.push_back("--replies");
    } else if (s.filter == "opendkim") {
      // The key from a file (TestPublicKeys, libopendkim's DKIM_QUERY_FILE): with
      // ResolverConfiguration, OpenDKIM 2.11 reads its unbound configuration again for every
      // message, which is not what it costs against a real resolver.
      std::ofstream(dir / "keys") << kSelector << "._domainkey." << kDomain << " "
                                  << corpus.key.record() << "\n";
      std::ofstream cfg(dir / "opendkim.conf");
      cfg << "Mode v\nSocket " << address_ << "\nTestPublicKeys " << (dir / "keys").string()
          << "\nAuthservID " << kOurId
          << "\nSyslog no\nSoftwareHeader no\nUMask 000\n";
      cfg.close();
      argv = {"/usr/sbin/opendkim", "-f", "-x", (dir / "opendkim.conf").string()};
    } else {
      std::ofstream cfg(dir / "mailreport.toml");
      cfg << "[store]\npath = \"" << (dir / "store.db").string() << "\"\n"
          << "[dns]\nlocal-only = true\nlocal-data = [\n";
      for (const auto& line : corpus.local_data()) cfg << "  '" << line << "',\n";
      cfg << "]\n[milter]\nsocket = \"" << address_ << "\"\nauthserv-id = \"" << kOurId << "\"\n";
      if (s.filter == "trusted") cfg << "trust-authserv-ids = [\"" << kUpstreamId << "\"]\n";
      cfg.close();
      argv = {(binary_dir() / "milter" / "mailreport-milter").string(), "-c",
              (dir / "mailreport.toml").string()};
    }
    auto child = ChildProcess::start(argv, dir / "filter.log");
    if (!child) throw std::runtime_error(child.error().describe());
    child_.emplace(std::move(*child));
    if (auto st = test::wait_for_listener(address_, *child_); !st) {
      throw std::runtime_error(st.error().describe());
    }
  }
  ~Server() {
    if (child_) child_->stop(seconds(15));
  }
  const std::string& address() const { return address_; }
  ChildProcess& process() { return *child_; }

 private:
  std::string address_;
  std::optional<ChildProcess> child_;
};

// One message over a new connection; returns the added latency, or an error.
Result<microseconds> deliver(const std::string& address, const MilterMessage& m, std::size_t n,
                             std::string* a_r = nullptr) {
  const auto t0 = steady_clock::now();
  auto c = MilterClient::connect(address);
  if (!c) return std::move(c).error();
  if (auto st = c->negotiate(); !st) return std::move(st).error();
  MilterSession s;
  s.client_addr = "192.0.2." + std::to_string(n % 250 + 1);
  s.client_name = "mail" + std::to_string(n % 250 + 1) + "." + kDomain;
  s.helo = std::string("mail.") + kDomain;
  s.connect_macros = {{"j", kOurId}, {"{daemon_name}", "smtpd"}};
  auto opened = c->open_session(s);
  if (!opened) return std::move(opened).error();
  auto r = c->send_message(m);
  if (!r) return std::move(r).error();
  const auto t1 = steady_clock::now();
  (void)c->quit();
  if (r->reply.action != MilterAction::Accept && r->reply.action != MilterAction::Continue) {
    return make_error(ErrorCode::Invalid,
                      std::string("filter answered ") + test::to_string(r->reply.action));
  }
  if (a_r != nullptr) {
    for (const auto& [name, value] : r->added_headers()) {
      if (name == "Authentication-Results") *a_r = value;
    }
  }
  return duration_cast<microseconds>(t1 - t0);
}

Figures run(Server& server, const std::vector<MilterMessage>& corpus, std::size_t total,
            int connections) {
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> errors{0};
  std::vector<std::vector<microseconds>> latencies(static_cast<std::size_t>(connections));
  std::mutex error_mu;
  std::string first_error;
  const auto filter_cpu0 = server.process().cpu_time();
  const auto client_cpu0 = own_cpu();
  const auto t0 = steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = latencies[static_cast<std::size_t>(t)];
      mine.reserve(total / static_cast<std::size_t>(connections) + 1);
      for (std::size_t n; (n = next.fetch_add(1)) < total;) {
        auto r = deliver(server.address(), corpus[n % corpus.size()], n);
        if (r) {
          mine.push_back(*r);
        } else {
          ++errors;
          std::lock_guard lock(error_mu);
          if (first_error.empty()) first_error = r.error().describe();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto elapsed = duration<double>(steady_clock::now() - t0).count();
  const auto client_cpu = own_cpu() - client_cpu0;
  // The milter's writer flushes its queue every second: let it, so that its CPU is counted.
  std::this_thread::sleep_for(milliseconds(1500));
  const auto filter_cpu = server.process().cpu_time() - filter_cpu0;
  if (!first_error.empty()) std::cerr << "  first error: " << first_error << "\n";

  std::vector<microseconds> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Figures f;
  f.messages = all.size();
  f.errors = errors;
  f.per_second = static_cast<double>(all.size()) / elapsed;
  auto pct = [&](double p) {
    if (all.empty()) return 0.0;
    std::size_t i = std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()));
    return all[i].count() / 1000.0;
  };
  f.p50_ms = pct(0.50);
  f.p99_ms = pct(0.99);
  f.filter_cpu_us = static_cast<double>(filter_cpu.count()) / static_cast<double>(total);
  f.client_cpu_us = static_cast<double>(client_cpu.count()) / static_cast<double>(total);
  return f;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench-milter: messages per second, latency and CPU per message of milters"};
  std::size_t messages = 3000;
  int rounds = 1;
  std::string connections_arg = "1,4,16";
  std::string transports_arg = "unix,tcp";
  std::string filters_arg = "noop,full,trusted";
  bool keep = false;
  app.add_option("--messages", messages, "messages per measurement (default 3000)");
  app.add_option("--rounds", rounds,
                 "measure every filter this many times, in turn, and report medians (default 1)")
      ->check(CLI::Range(1, 100));
  app.add_option("--connections", connections_arg, "concurrent connections (default 1,4,16)");
  app.add_option("--transports", transports_arg, "unix, tcp (default both)");
  app.add_option("--filters", filters_arg,
                 "noop, full, trusted (default); noop-replies (the floor with a reply at "
                 "every step), opendkim (OpenDKIM verifying the same messages)");
  app.add_flag("--keep", keep, "keep the work folder (configs, logs, stores)");
  CLI11_PARSE(app, argc, argv);

  const auto work = std::filesystem::temp_directory_path() /
                    ("mailreport-bench-milter-" + std::to_string(::getpid()));
  std::filesystem::create_directories(work);
  int rc = 0;
  try {
    std::cerr << "generating " << kDistinctMessages << " signed messages...\n";
    Corpus corpus;
    const auto filters = split(filters_arg);
    // With more than one round the filters take turns (noop, full, trusted, noop, ...), so a
    // slower or faster spell of the machine falls on all of them, and the table reports the
    // median of the rounds; "CPU range" is the lowest and highest round.
    std::cout << "| filter | transport | connections | messages | msgs/s | p50 ms | p99 ms | "
                 "filter CPU µs/msg | CPU range | × floor CPU | client CPU µs/msg |\n"
              << "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& transport : split(transports_arg)) {
      // Every filter's process listens for the whole transport; the idle ones cost nothing.
      std::vector<std::unique_ptr<Server>> servers;
      for (const auto& filter : filters) {
        servers.push_back(
            std::make_unique<Server>(Scenario{filter, transport}, corpus,
                                     work / (filter + "-" + transport)));
        const auto& msgs = filter == "trusted" ? corpus.trusted : corpus.plain;
        // Warm-up: fills the resolver cache and checks the answer.
        for (std::size_t n = 0; n < 100; ++n) {
          std::string a_r;
          auto r = deliver(servers.back()->address(), msgs[n % msgs.size()], n, &a_r);
          if (!r) throw std::runtime_error(filter + " warm-up: " + r.error().describe());
          const bool ours = filter == "full" || filter == "trusted";
          if ((ours || filter == "opendkim") && a_r.find("dkim=pass") == std::string::npos) {
            throw std::runtime_error(filter + " warm-up: unexpected Authentication-Results: " +
                                     a_r);
          }
          if (ours && (a_r.find("dmarc=pass") == std::string::npos ||
                       a_r.find("spf=pass") == std::string::npos)) {
            throw std::runtime_error(filter + " warm-up: unexpected Authentication-Results: " +
                                     a_r);
          }
        }
      }
      for (const auto& c : split(connections_arg)) {
        const int conns = std::stoi(c);
        std::vector<std::vector<Figures>> got(filters.size());
        for (int round = 0; round < rounds; ++round) {
          for (std::size_t i = 0; i < filters.size(); ++i) {
            const auto& msgs = filters[i] == "trusted" ? corpus.trusted : corpus.plain;
            got[i].push_back(run(*servers[i], msgs, messages, conns));
            if (got[i].back().errors) rc = 1;
          }
        }
        auto med = [&](std::size_t i, double Figures::*field) {
          std::vector<double> v;
          for (const auto& f : got[i]) v.push_back(f.*field);
          return median(v);
        };
        std::optional<double> floor;
        for (std::size_t i = 0; i < filters.size(); ++i) {
          if (filters[i] == "noop") floor = med(i, &Figures::filter_cpu_us);
        }
        for (std::size_t i = 0; i < filters.size(); ++i) {
          const double cpu = med(i, &Figures::filter_cpu_us);
          double lo = cpu, hi = cpu;
          std::size_t delivered = 0, errors = 0;
          for (const auto& f : got[i]) {
            lo = std::min(lo, f.filter_cpu_us);
            hi = std::max(hi, f.filter_cpu_us);
            delivered += f.messages;
            errors += f.errors;
          }
          std::cout << "| " << filters[i] << " | " << transport << " | " << conns << " | "
                    << delivered << " | " << fixed(med(i, &Figures::per_second), 0)
                    << " | " << fixed(med(i, &Figures::p50_ms), 2) << " | "
                    << fixed(med(i, &Figures::p99_ms), 2) << " | " << fixed(cpu, 0)
                    << " | " << fixed(lo, 0) << "–" << fixed(hi, 0) << " | "
                    << (floor && *floor > 0 ? fixed(cpu / *floor, 2) : std::string("-"))
                    << " | " << fixed(med(i, &Figures::client_cpu_us), 0) << " |"
                    << (errors ? " (" + std::to_string(errors) + " errors)" : "") << "\n"
                    << std::flush;
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "bench-milter: " << e.what() << "\n";
    rc = 1;
  }
  if (keep) {
    std::cerr << "work folder kept: " << work << "\n";
  } else {
    std::filesystem::remove_all(work);
  }
  return rc;
}
