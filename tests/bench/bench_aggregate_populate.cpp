// bench-aggregate-populate: fills a SQLite store with one UTC day of the milter's evaluations
// for timing the aggregate report build (issue 5's figure: 10 million messages over 100,000
// policy domains in 1 million distinct rows, built in under 60 s and 256 MB):
//
//   bench-aggregate-populate DB [--messages 10000000] [--domains 100000] [--rows 1000000]
//                               [--day 1699920000] [--batch 5000]
//   then e.g.  mailreport -c CONF send-reports --dry-run ...   (with store.path = DB)
//
// Each policy domain "d<N>.example" gets rows/domains rows (the remainder to the first ones),
// each a distinct identity: its own hour of the day (cycling through the 24) and source IP,
// with DKIM/SPF results varying by row. Messages are spread over the rows unevenly but summing
// exactly to --messages: rows in pairs, one above the mean and one below. Everything goes
// through Store::record_evaluations (so the rows are what the milter would have written), in
// batches of --batch evaluations (the same evaluation repeated for a row's messages, which the
// store sums in memory), with synchronous=NORMAL: a 10M-message day takes a few minutes.
// The store is created if needed; rows are added to what is there. With --pg-url URL the
// rows go into that PostgreSQL database instead (issue 8; DB is then ignored, give "-").
//
//   bench-aggregate-populate DB --walk [--mark]
// times the store's part of the build instead: one Store::for_each_unreported_evaluation over
// the day (every unreported row handed over), with the peak RSS; with --mark, every row is
// also marked reported through commit_aggregate_batch, in batches of 10,000 committed from
// inside the walk as a builder does (this consumes the store: run it on a copy).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_store.hpp"
#include "evaluation_gen.hpp"

int main(int argc, char** argv) {
  using namespace mailreport;
  CLI::App app{"bench-aggregate-populate: one day of evaluation rows for the report build"};
  std::string db;
  std::uint64_t messages = 10'000'000;
  std::uint64_t domains = 100'000;
  std::uint64_t rows = 1'000'000;
  std::int64_t day = 1699920000;  // 2023-11-14 00:00:00 UTC
  std::size_t batch_size = 5000;
  app.add_option("DB", db, "store file")->required();
  app.add_option("--messages", messages, "messages in all (default 10000000)");
  app.add_option("--domains", domains, "policy domains (default 100000)");
  app.add_option("--rows", rows, "distinct evaluation rows (default 1000000)");
  app.add_option("--day", day, "the UTC day (midnight, epoch seconds; default 1699920000)");
  app.add_option("--batch", batch_size, "evaluations per record_evaluations call (default 5000)");
  std::string pg_url;
  app.add_option("--pg-url", pg_url, "fill this PostgreSQL database (libpq URL) instead of DB");
  bool walk = false;
  bool mark = false;
  app.add_flag("--walk", walk, "time a walk of the day's unreported rows instead of populating");
  app.add_flag("--mark", mark, "with --walk: mark every row reported, in batches of 10000");
  CLI11_PARSE(app, argc, argv);
  if (domains == 0 || rows < domains || messages < rows || batch_size == 0) {
    std::fprintf(stderr, "need 0 < domains <= rows <= messages and a batch size\n");
    return 2;
  }
  day -= ((day % 86400) + 86400) % 86400;

  std::unique_ptr<store::Store> s = bench::open_bench_store(db, pg_url, false);
  if (!s) return 1;
  if (!pg_url.empty()) db = "PostgreSQL";

  if (walk) {
    std::uint64_t walked = 0, walked_messages = 0;
    std::string last_domain;
    std::uint64_t walked_domains = 0;
    store::AggregateBatch pending;
    pending.kind = std::string(store::kDmarcAggregateKind);
    double commit_seconds = 0;
    Status commit_status;
    auto commit = [&]() {
      if (pending.reported.empty() || !commit_status) return;
      const auto c0 = std::chrono::steady_clock::now();
      auto ids = s->commit_aggregate_batch(pending);
      commit_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
      if (!ids) commit_status = ids.error();
      pending.reported.clear();
    };
    const auto t0 = std::chrono::steady_clock::now();
    auto st =
        s->for_each_unreported_evaluation(day + 86400, "", [&](const store::EvaluationRow& r) {
          ++walked;
          walked_messages += r.record.row.count;
          if (r.policy.domain != last_domain) {
            ++walked_domains;
            last_domain = r.policy.domain;
            if (pending.reported.size() >= 10000) commit();
          }
          if (mark) {
            pending.reported.push_back({store::ReportedCount::Table::Evaluation, r.id,
                                        r.reported + r.record.row.count, 0, r.reported, 0});
          }
          return true;
        });
    commit();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st || !commit_status) {
      std::fprintf(stderr, "walk: %s\n", (st ? commit_status : st).error().describe().c_str());
      return 1;
    }
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    std::printf(
        "bench-aggregate-populate --walk: %llu rows, %llu messages, %llu policy domains"
        " in %.1f s (%.0f rows/s), peak RSS %ld MB\n",
        static_cast<unsigned long long>(walked), static_cast<unsigned long long>(walked_messages),
        static_cast<unsigned long long>(walked_domains), seconds,
        static_cast<double>(walked) / seconds, u.ru_maxrss / 1024);
    if (mark) std::printf("  of which marking them reported: %.1f s\n", commit_seconds);
    return 0;
  }

  const std::uint64_t mean = messages / rows;
  const std::uint64_t extra = messages % rows;  // the first `extra` rows get one more
  std::vector<auth::Evaluation> batch;
  batch.reserve(batch_size + mean * 2);
  std::uint64_t written = 0, row = 0;
  const auto start = std::chrono::steady_clock::now();
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    auto st = s->record_evaluations(batch);
    if (!st) {
      std::fprintf(stderr, "record_evaluations: %s\n", st.error().describe().c_str());
      return false;
    }
    written += batch.size();
    batch.clear();
    return true;
  };
  const std::uint64_t per_domain = rows / domains;
  const std::uint64_t more = rows % domains;  // the first `more` domains get one more row
  for (std::uint64_t d = 0; d < domains; ++d) {
    const std::uint64_t n = per_domain + (d < more ? 1 : 0);
    for (std::uint64_t r = 0; r < n; ++r, ++row) {
      // Rows in pairs around the mean: +delta, -delta (delta < mean), so the sum is exact.
      std::uint64_t delta = mean > 1 ? (row / 2 * 2654435761u) % mean : 0;
      std::uint64_t count = row % 2 == 0 ? mean + delta : mean - delta;
      if (row % 2 == 0 && row + 1 == rows) count = mean;  // an odd last row has no partner
      if (row < extra) ++count;
      // One hour per row of the domain (cycling), and its own source: distinct identities.
      const std::int64_t time = day + static_cast<std::int64_t>((r + d) % 24) * 3600 +
                                static_cast<std::int64_t>(d % 3600);
      auth::Evaluation ev = bench::make_evaluation(d, r, time, static_cast<unsigned>(r % 4));
      for (std::uint64_t i = 0; i < count; ++i) batch.push_back(ev);
      if (batch.size() >= batch_size && !flush()) return 1;
    }
    if (d % 10000 == 9999) {
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "  %llu domains, %llu messages, %.0f s\n",
                   static_cast<unsigned long long>(d + 1),
                   static_cast<unsigned long long>(written + batch.size()), seconds);
    }
  }
  if (!flush()) return 1;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "bench-aggregate-populate: %s: %llu messages in %llu rows over %llu domains,"
      " day %lld, in %.1f s (%.0f messages/s)\n",
      db.c_str(), static_cast<unsigned long long>(written), static_cast<unsigned long long>(row),
      static_cast<unsigned long long>(domains), static_cast<long long>(day), seconds,
      static_cast<double>(written) / seconds);
  return 0;
}
