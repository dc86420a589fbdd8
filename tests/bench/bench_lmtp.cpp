// bench-lmtp: small DMARC aggregate reports delivered over loopback TCP to the LMTP receiver
// (in-process, real SQLite store with synchronous=FULL in a temporary folder), by 8 and by 1
// concurrent clients. Each message is a distinct ~2 KB report, so every one is parsed and
// stored (no duplicates). items_per_second = messages acknowledged with 250 per second.
#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "mailreport/config/config.hpp"
#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/lmtp/client.hpp"
#include "mailreport/lmtp/server.hpp"
#include "mailreport/store/sqlite_store.hpp"

namespace {

using namespace mailreport;

struct Env {
  std::filesystem::path dir;
  NullLogger log;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<ingest::StoreIngestor> ingestor;
  std::unique_ptr<lmtp::Server> server;

  Env() {
    dir = std::filesystem::temp_directory_path() / ("mailreport-bench-lmtp-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto loaded = config::load_string("[store]\npath = \"" + (dir / "bench.db").string() +
                                      "\"\n[lmtp]\nunix-socket = \"\"\ntcp = \"127.0.0.1:0\"\n"
                                      "max-connections = 64\n");
    if (!loaded.problems.empty()) throw std::runtime_error(loaded.problems.front().describe());
    auto opened = store::open_sqlite_store({.path = dir / "bench.db"});
    if (!opened) throw std::runtime_error(opened.error().describe());
    store = std::move(*opened);
    ingestor = std::make_unique<ingest::StoreIngestor>(*store, log);
    server = std::make_unique<lmtp::Server>(loaded.config, *ingestor, log);
    if (auto st = server->start(); !st) throw std::runtime_error(st.error().describe());
  }
  ~Env() {
    server->stop();
    server.reset();
    ingestor.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

std::unique_ptr<Env> env;
std::atomic<std::uint64_t> sequence{0};

std::string report_message(std::uint64_t n) {
  std::string id = "bench-" + std::to_string(n);
  std::string xml =
      "<?xml version=\"1.0\"?>\n<feedback><version>1.0</version><report_metadata>"
      "<org_name>Bench Reporter</org_name><email>dmarc@bench.example</email><report_id>" + id +
      "</report_id><date_range><begin>1767225600</begin><end>1767311999</end></date_range>"
      "</report_metadata><policy_published><domain>example.com</domain><adkim>r</adkim>"
      "<aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct></policy_published>\n";
  for (int i = 0; i < 6; ++i) {
    xml += "<record><row><source_ip>192.0.2." + std::to_string(i + 1) +
           "</source_ip><count>" + std::to_string(n % 50 + 1) +
           "</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
           "<spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.com"
           "</header_from></identifiers><auth_results><dkim><domain>example.com</domain>"
           "<selector>s1</selector><result>pass</result></dkim><spf><domain>example.com"
           "</domain><result>pass</result></spf></auth_results></record>\n";
  }
  xml += "</feedback>\n";
  return "From: dmarc@bench.example\r\nTo: dmarc@example.com\r\nSubject: Report Domain: "
         "example.com Submitter: bench.example Report-ID: <" + id + ">\r\nMessage-ID: <" + id +
         "@bench.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/xml\r\n\r\n" + xml;
}

// Run once per benchmark run, before and after all its threads.
void SetUp(const benchmark::State&) { env = std::make_unique<Env>(); }
void TearDown(const benchmark::State&) { env.reset(); }

void BM_LmtpDeliverSmallReport(benchmark::State& state) {
  auto client = lmtp::Client::connect_tcp("127.0.0.1", env->server->bound_port());
  if (!client || !client->hello("bench.localhost")) {
    state.SkipWithError("cannot connect to the receiver");
    return;
  }
  const std::vector<std::string> rcpt{"dmarc@example.com"};
  std::uint64_t ok = 0;
  for (auto _ : state) {
    std::string msg = report_message(sequence.fetch_add(1));  // microseconds; not paused
    auto r = client->deliver("dmarc@bench.example", rcpt, msg);
    if (!r || r->empty() || !(*r)[0].reply.positive()) {
      state.SkipWithError("delivery not acknowledged");
      break;
    }
    ++ok;
  }
  client->quit();
  state.SetItemsProcessed(static_cast<std::int64_t>(ok));
}

BENCHMARK(BM_LmtpDeliverSmallReport)
    ->Setup(SetUp)
    ->Teardown(TearDown)
    ->Threads(8)
    ->Threads(1)
    ->UseRealTime()
    ->MinTime(5.0);

}  // namespace

BENCHMARK_MAIN();
