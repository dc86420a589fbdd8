// bench-evaluations-record: the sustained rate at which the store records the milter's
// evaluations (Store::record_evaluations), from one writer thread in batches of 500 like
// mailreport-milter's background writer, into a SQLite store file with synchronous=FULL (the
// default; --normal for NORMAL) in a temporary folder (or --db), or into PostgreSQL
// (--pg-url, issue 8).
//
//   bench-evaluations-record [--messages 2000000] [--domains 20000] [--sources 10]
//                            [--per-hour 1000000] [--batch 500] [--normal] [--db PATH]
//                            [--drop-unreported-index] [--pg-url URL] [--writer N]
//                            [--domain-offset N] [--start-at EPOCH]
//
// Several writers at once (issue 8: the milters of several MX nodes sharing one database) are
// several processes of this bench: --writer N seeds each one's traffic differently (which
// domain, source and variant each message has, in which order), over the same policy domains
// and sources unless --domain-offset moves one's domains (d<offset>... onwards); the realistic
// case is overlapping (the nodes receive mail from the same senders, so their batches upsert
// the same rows). --start-at makes them start recording at the same moment (epoch seconds,
// fractions allowed) after opening the store. --db with several processes puts them on one
// SQLite file (one writer at a time, busy_timeout).
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
// measure what it costs the upsert (SQLite only). On PostgreSQL the rows in the store are not
// counted here (the script, run-pg-benchmarks.sh, counts them with psql), and the process's
// own CPU time (user + system, generation included) is printed for comparing with the
// server's.
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
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench_store.hpp"
#include "evaluation_gen.hpp"

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

// This process's user + system CPU time, in seconds.
double process_cpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
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
  CLI::App app{"bench-evaluations-record: evaluations recorded per second by the store"};
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
  std::string pg_url;
  unsigned writer = 0;
  std::uint64_t domain_offset = 0;
  double start_at = 0;
  app.add_option("--pg-url", pg_url, "record into PostgreSQL at this libpq URL instead of SQLite");
  app.add_option("--writer", writer, "this writer's number: seeds its traffic (default 0)");
  app.add_option("--domain-offset", domain_offset,
                 "first policy domain number (default 0: writers overlap)");
  app.add_option("--start-at", start_at, "start recording at this epoch time (seconds)");
  CLI11_PARSE(app, argc, argv);
  const bool pg = !pg_url.empty();
  if (pg && (drop_index || normal || !db_arg.empty())) {
    std::fprintf(stderr, "--pg-url goes with neither --db, --normal nor --drop-unreported-index\n");
    return 2;
  }
  if (domains == 0 || sources == 0 || per_hour == 0 || batch_size == 0) {
    std::fprintf(stderr, "counts must be positive\n");
    return 2;
  }

  std::filesystem::path dir;
  std::filesystem::path db = db_arg;
  if (db.empty() && !pg) {
    dir = std::filesystem::temp_directory_path() /
          ("mailreport-bench-record-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    db = dir / "bench.db";
  }
  int rc = 0;
  {
    std::unique_ptr<store::Store> s = bench::open_bench_store(db, pg_url, !normal);
    if (!s) return 1;
    if (drop_index) sql_count(db, "DROP INDEX IF EXISTS evaluations_unreported");
    const std::int64_t rows_before = pg ? 0 : sql_count(db, "SELECT count(*) FROM evaluations");

    if (start_at > 0) {
      const auto at = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::duration<double>(start_at)));
      std::this_thread::sleep_until(at);
    }
    const double process_cpu0 = process_cpu();
    std::mt19937_64 rng(42 + writer);
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
    // The statements a batch costs the store: one upsert per distinct row (domain, source,
    // variant, hour) and one per distinct (domain, hour) interval.
    std::set<std::tuple<std::uint64_t, std::uint64_t, unsigned, std::int64_t>> batch_rows;
    std::set<std::pair<std::uint64_t, std::int64_t>> batch_intervals;
    std::uint64_t sum_rows = 0, sum_intervals = 0, batches = 0;
    const auto wall_start = Clock::now();
    for (std::uint64_t done = 0; done < messages;) {
      batch.clear();
      batch_rows.clear();
      batch_intervals.clear();
      for (std::size_t i = 0; i < batch_size && done + i < messages; ++i) {
        const std::uint64_t n = done + i;
        auto domain =
            static_cast<std::uint64_t>(static_cast<double>(domains) * std::pow(uniform(rng), 3.0));
        auto source =
            static_cast<std::uint64_t>(static_cast<double>(sources) * std::pow(uniform(rng), 2.0));
        unsigned variant = uniform(rng) < 0.9 ? 0u : 1u + static_cast<unsigned>(rng() % 3);
        const auto time =
            start + static_cast<std::int64_t>(n * 3600 / per_hour);  // time runs with traffic
        domain = domain_offset + std::min(domain, domains - 1);
        source = std::min(source, sources - 1);
        batch.push_back(bench::make_evaluation(domain, source, time, variant));
        batch_rows.emplace(domain, source, variant, time - time % 3600);
        batch_intervals.emplace(domain, time - time % 3600);
      }
      sum_rows += batch_rows.size();
      sum_intervals += batch_intervals.size();
      ++batches;
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
    const double cpu_all = process_cpu() - process_cpu0;
    s.reset();
    const std::int64_t rows =
        pg ? -1 : sql_count(db, "SELECT count(*) FROM evaluations") - rows_before;
    std::sort(latencies.begin(), latencies.end());
    auto pct = [&latencies](double p) {
      if (latencies.empty()) return 0.0;
      auto i = static_cast<std::size_t>(p * static_cast<double>(latencies.size() - 1));
      return latencies[i] * 1000;
    };
    std::printf(
        "bench-evaluations-record: %llu messages in batches of %zu, %llu domains x %llu sources,"
        " %llu messages/hour, %s%s, writer %u, domains from %llu\n",
        static_cast<unsigned long long>(messages), batch_size,
        static_cast<unsigned long long>(domains), static_cast<unsigned long long>(sources),
        static_cast<unsigned long long>(per_hour),
        pg ? "PostgreSQL" : (normal ? "SQLite synchronous=NORMAL" : "SQLite synchronous=FULL"),
        drop_index ? ", without the unreported index" : "", writer,
        static_cast<unsigned long long>(domain_offset));
    std::printf("  store time %.2f s (wall %.2f s): %.0f messages/s recorded\n", store_seconds,
                wall, static_cast<double>(messages) / store_seconds);
    std::printf("  store CPU %.2f s: %.0f messages per CPU second, %.1f us CPU per message\n",
                store_cpu, static_cast<double>(messages) / store_cpu,
                store_cpu * 1e6 / static_cast<double>(messages));
    std::printf(
        "  process CPU %.2f s (generation included): %.1f us per message; %.0f messages/s"
        " of wall time\n",
        cpu_all, cpu_all * 1e6 / static_cast<double>(messages),
        static_cast<double>(messages) / wall);
    if (rows >= 0) {
      std::printf("  rows created: %lld (%.0f rows/s), %.1f messages per row\n",
                  static_cast<long long>(rows), static_cast<double>(rows) / store_seconds,
                  rows > 0 ? static_cast<double>(messages) / static_cast<double>(rows) : 0.0);
    }
    std::printf("  per batch: %.1f distinct rows, %.1f distinct (domain, hour) intervals\n",
                batches ? static_cast<double>(sum_rows) / static_cast<double>(batches) : 0.0,
                batches ? static_cast<double>(sum_intervals) / static_cast<double>(batches) : 0.0);
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
