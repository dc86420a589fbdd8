// bench-aggregate-build: builds one day's DMARC aggregate reports from an existing store file
// (filled by bench-aggregate-populate: 10M messages, 100k policy domains, 1M rows) through the
// real builder and SQLite store, as `mailreport serve` would at the day's end, and prints
// reports, deliveries, messages, gzip bytes and seconds. Peak memory: run it under
// `/usr/bin/time -v`. Issue 5's targets: under 60 s and under 256 MB peak RSS.
//
//   bench-aggregate-build DB [--now EPOCH] [--dry-run] [--first-run] [--format rfc9990|rfc7489]
//   bench-aggregate-build --pg-url URL [...]
//
// --pg-url builds from a PostgreSQL store instead (issue 8; filled by `mailreport migrate` or
// `bench-aggregate-populate --pg-url`), under the store's job lock like serve; the server's
// CPU time is not the process's: tests/bench/run-pg-benchmarks.sh measures it.
//
// --now defaults to the end of the day of the newest recorded row plus the grace, so that
// exactly that day (and whatever is older and unreported) is due. A store without a DMARC
// watermark gets one at that day's begin first, as the previous day's build would have left
// it (the steady state); --first-run keeps none, so the builder first looks for the earliest
// unreported row (one more walk over the rows) as on the very first run. The run commits: a second
// run on the same file finds nothing due (copy the file first to repeat, or use --dry-run,
// which builds everything but commits nothing). Relaxed alignment uses a toy organizational
// domain (the last two labels) instead of the public suffix list.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "bench_store.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/outbound/aggregate_builder.hpp"
#include "mailreport/outbound/dmarc_aggregate.hpp"
#include "mailreport/util/log.hpp"

namespace {

using namespace mailreport;

std::string last_two_labels(std::string_view d) {
  auto last = d.rfind('.');
  if (last == std::string_view::npos || last == 0) return std::string(d);
  auto prev = d.rfind('.', last - 1);
  return std::string(prev == std::string_view::npos ? d : d.substr(prev + 1));
}

int usage() {
  std::fprintf(stderr,
               "usage: bench-aggregate-build DB|--pg-url URL [--now EPOCH] [--dry-run] "
               "[--first-run] [--format rfc9990|rfc7489]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::string pg_url;
  std::int64_t now = 0;
  bool dry_run = false;
  bool first_run = false;
  auto format = config::DmarcAggregateFormat::Rfc9990;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--now" && i + 1 < argc) {
      now = std::strtoll(argv[++i], nullptr, 10);
    } else if (a == "--pg-url" && i + 1 < argc) {
      pg_url = argv[++i];
    } else if (a == "--dry-run") {
      dry_run = true;
    } else if (a == "--first-run") {
      first_run = true;
    } else if (a == "--format" && i + 1 < argc) {
      std::string_view f = argv[++i];
      if (f == "rfc7489") {
        format = config::DmarcAggregateFormat::Rfc7489;
      } else if (f != "rfc9990") {
        return usage();
      }
    } else if (path.empty() && !a.starts_with("--")) {
      path = a;
    } else {
      return usage();
    }
  }
  if (path.empty() == pg_url.empty()) return usage();

  auto opened = bench::open_bench_store(path, pg_url, true);
  if (!opened) return 1;
  if (!pg_url.empty()) path = "PostgreSQL";
  store::Store& store = *opened;

  if (now == 0) {
    store::EvaluationFilter newest;
    newest.limit = 1;
    auto rows = store.list_evaluations(newest);
    if (!rows || rows->empty()) {
      std::fprintf(stderr, "no evaluation rows in %s%s%s\n", path.c_str(), rows ? "" : ": ",
                   rows ? "" : rows.error().describe().c_str());
      return 1;
    }
    now =
        outbound::align_interval(rows->front().interval_begin, config::AggregateFrequency::Daily) +
        86400 + outbound::kGrace.count();
  }

  const std::string kind(store::kDmarcAggregateKind);
  auto watermark = store.aggregate_watermark(kind);
  if (!watermark) {
    std::fprintf(stderr, "%s\n", watermark.error().describe().c_str());
    return 1;
  }
  if (!*watermark && !first_run && !dry_run) {
    store::AggregateBatch batch;
    batch.kind = kind;
    batch.watermark = now - outbound::kGrace.count() - 86400;
    batch.expect_watermark = std::optional<std::int64_t>{};
    if (auto ids = store.commit_aggregate_batch(batch); !ids) {
      std::fprintf(stderr, "%s\n", ids.error().describe().c_str());
      return 1;
    }
  }

  auto cfg = std::make_shared<config::Config>(*config::Config::defaults());
  cfg->report.domain = "bench.example";
  cfg->report.submitter = "mx.bench.example";
  auto& s = cfg->report.dmarc_aggregate;
  s.org_name = "bench.example";
  s.from_address = "noreply-dmarc@bench.example";
  s.send = config::AggregateFrequency::Daily;
  s.format = format;

  StderrLogger log(LogLevel::Warning);
  outbound::AggregateBuilder builder(store, outbound::make_dmarc_source(cfg, last_two_labels, log),
                                     log);
  outbound::BuildOptions build;
  build.now = now;
  if (dry_run) build.dry_run = [](const outbound::BuiltReport&) -> Status { return {}; };

  const auto t0 = std::chrono::steady_clock::now();
  auto stats = builder.run(build);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!stats) {
    std::fprintf(stderr, "build failed: %s\n", stats.error().describe().c_str());
    return 1;
  }
  if (stats->intervals == 0) {
    std::fprintf(stderr, "nothing due at %lld (already built? use a fresh copy or --dry-run)\n",
                 static_cast<long long>(now));
  }
  std::printf(
      "now %lld%s: intervals %llu, reports %llu, deliveries %llu, messages %llu, gzip bytes "
      "%llu, seconds %.2f\n",
      static_cast<long long>(now), dry_run ? " (dry run)" : "",
      static_cast<unsigned long long>(stats->intervals),
      static_cast<unsigned long long>(stats->reports),
      static_cast<unsigned long long>(stats->deliveries),
      static_cast<unsigned long long>(stats->messages),
      static_cast<unsigned long long>(stats->bytes), seconds);
  return 0;
}
