// bench-evaluations-record: the sustained rate at which the SQLite store records the milter's
// evaluations (Store::record_evaluations), from one writer thread in batches of 500 like
// mailreport-milter's background writer, into a store file with synchronous=FULL (the
// default; --normal for NORMAL) in a temporary folder (or --db).
//
//   bench-evaluations-record [--messages 2000000] [--domains 20000] [--sources 10]
//                            [--per-hour 1000000] [--batch 500] [--normal] [--db PATH]
//                            [--drop-unreported-index]
//
// Traffic: each message picks a policy domain from a skewed distribution (a few large senders,
// a long tail), one of that domain's sources (skewed too) and a result variant (90% pass,
// else DKIM, SPF or both fail); its time advances so that --per-hour messages make an hour.
// Rows are (hour, policy domain, identity): each hour starts new rows, repeats add to them.
// Evaluations are generated before each batch's clock starts.
//
// Figures: messages recorded per second (store time only: the record_evaluations calls) and
// per CPU second of the writer thread (getrusage: holds on a busy machine, where the wall
// clock does not), rows
// in the store at the end and rows created per second, per-batch latency p50/p99/max, and the
// rate in each tenth of the run (does it hold as the table grows?).
// --drop-unreported-index drops migration 5's partial index of unreported rows first, to
// measure what it costs the upsert.
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "evaluation_gen.hpp"
#include "mailreport/store/sqlite_store.hpp"

namespace {

using namespace mailreport;
using Clock = std::chrono::steady_clock;

// This thread's user + system CPU time, in seconds: the figure that holds on a busy machine.
double thread_cpu() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::int64_t sql_count(const std::filesystem::path& db, const char* sql) {
  sqlite3* raw = nullptr;
  sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> conn(raw, &sqlite3_close);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(raw, sql, -1, &st, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(raw));
    return -1;
  }
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(st, &sqlite3_finalize);
  int rc = sqlite3_step(st);
  return rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench-evaluations-record: evaluations recorded per second by the SQLite store"};
  std::uint64_t messages = 2'000'000;
  std::uint64_t domains = 20'000;
  std::uint64_t sources = 10;
  std::uint64_t per_hour = 1'000'000;
  std::size_t batch_size = 500;
  bool normal = false;
  bool drop_index = false;
  std::string db_arg;
  app.add_option("--messages", messages, "evaluations to record (default 2000000)");
  app.add_option("--domains", domains, "policy domains (default 20000)");
  app.add_option("--sources", sources, "source IPs per domain (default 10)");
  app.add_option("--per-hour", per_hour, "messages per simulated hour (default 1000000)");
  app.add_option("--batch", batch_size, "evaluations per record_evaluations call (default 500)");
  app.add_flag("--normal", normal, "synchronous=NORMAL instead of FULL");
  app.add_option("--db", db_arg, "store file (default: a new one in a temporary folder)");
  app.add_flag("--drop-unreported-index", drop_index,
               "drop the partial index of unreported rows (migration 5) first");
  CLI11_PARSE(app, argc, argv);
  if (domains == 0 || sources == 0 || per_hour == 0 || batch_size == 0) {
    std::fprintf(stderr, "counts must be positive\n");
    return 2;
  }

  std::filesystem::path dir;
  std::filesystem::path db = db_arg;
  if (db.empty()) {
    dir = std::filesystem::temp_directory_path() /
          ("mailreport-bench-record-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    db = dir / "bench.db";
  }
  int rc = 0;
  {
    store::SqliteOptions options;
    options.path = db;
    options.synchronous_full = !normal;
    auto opened = store::open_sqlite_store(options);
    if (!opened) {
      std::fprintf(stderr, "%s\n", opened.error().describe().c_str());
      return 1;
    }
    std::unique_ptr<store::Store> s = std::move(*opened);
    if (drop_index) sql_count(db, "DROP INDEX IF EXISTS evaluations_unreported");
    const std::int64_t rows_before = sql_count(db, "SELECT count(*) FROM evaluations");

    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const std::int64_t start = 1700000000 - 1700000000 % 3600;
    std::vector<double> latencies;
    latencies.reserve(messages / batch_size + 1);
    std::vector<double> tenth_seconds(10, 0.0);
    std::vector<std::uint64_t> tenth_messages(10, 0);
    double store_seconds = 0;
    double store_cpu = 0;
    std::vector<auth::Evaluation> batch;
    batch.reserve(batch_size);
    const auto wall_start = Clock::now();
    for (std::uint64_t done = 0; done < messages;) {
      batch.clear();
      for (std::size_t i = 0; i < batch_size && done + i < messages; ++i) {
        const std::uint64_t n = done + i;
        auto domain =
            static_cast<std::uint64_t>(static_cast<double>(domains) * std::pow(uniform(rng), 3.0));
        auto source =
            static_cast<std::uint64_t>(static_cast<double>(sources) * std::pow(uniform(rng), 2.0));
        unsigned variant = uniform(rng) < 0.9 ? 0u : 1u + static_cast<unsigned>(rng() % 3);
        const auto time =
            start + static_cast<std::int64_t>(n * 3600 / per_hour);  // time runs with traffic
        batch.push_back(bench::make_evaluation(std::min(domain, domains - 1),
                                               std::min(source, sources - 1), time, variant));
      }
      const auto t0 = Clock::now();
      const double cpu0 = thread_cpu();
      auto st = s->record_evaluations(batch);
      store_cpu += thread_cpu() - cpu0;
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      if (!st) {
        std::fprintf(stderr, "record_evaluations: %s\n", st.error().describe().c_str());
        rc = 1;
        break;
      }
      store_seconds += seconds;
      latencies.push_back(seconds);
      const std::size_t tenth = std::min<std::size_t>(9, done * 10 / messages);
      tenth_seconds[tenth] += seconds;
      tenth_messages[tenth] += batch.size();
      done += batch.size();
    }
    const double wall = std::chrono::duration<double>(Clock::now() - wall_start).count();
    s.reset();
    const std::int64_t rows = sql_count(db, "SELECT count(*) FROM evaluations") - rows_before;
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&latencies](double p) {
      if (latencies.empty()) return 0.0;
      auto i = static_cast<std::size_t>(p * static_cast<double>(latencies.size() - 1));
      return latencies[i] * 1000;
    };
    std::printf(
        "bench-evaluations-record: %llu messages in batches of %zu, %llu domains x %llu sources,"
        " %llu messages/hour, synchronous=%s%s\n",
        static_cast<unsigned long long>(messages), batch_size,
        static_cast<unsigned long long>(domains), static_cast<unsigned long long>(sources),
        static_cast<unsigned long long>(per_hour), normal ? "NORMAL" : "FULL",
        drop_index ? ", without the unreported index" : "");
    std::printf("  store time %.2f s (wall %.2f s): %.0f messages/s recorded\n", store_seconds,
                wall, static_cast<double>(messages) / store_seconds);
    std::printf("  store CPU %.2f s: %.0f messages per CPU second, %.1f us CPU per message\n",
                store_cpu, static_cast<double>(messages) / store_cpu,
                store_cpu * 1e6 / static_cast<double>(messages));
    std::printf("  rows created: %lld (%.0f rows/s), %.1f messages per row\n",
                static_cast<long long>(rows), static_cast<double>(rows) / store_seconds,
                rows > 0 ? static_cast<double>(messages) / static_cast<double>(rows) : 0.0);
    std::printf("  batch latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", pct(0.5), pct(0.99),
                pct(1.0));
    std::printf("  messages/s per tenth of the run:");
    for (std::size_t i = 0; i < 10; ++i) {
      if (tenth_seconds[i] > 0) {
        std::printf(" %.0f", static_cast<double>(tenth_messages[i]) / tenth_seconds[i]);
      }
    }
    std::printf("\n");
  }
  if (!dir.empty()) std::filesystem::remove_all(dir);
  return rc;
}
