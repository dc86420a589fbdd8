// The aggregate report scheduler (aggregate_builder.hpp): which intervals are due, in order
// from the kind's watermark, and the batches that commit their reports, outbox entries and
// reported counts together (store.hpp, "aggregate reports we send").
//
// - No watermark yet (the first run ever): the first interval is the one holding the earliest
//   unreported count (AggregateSource::earliest_unreported), else the one holding `now`; so
//   counts recorded before mailreport serve first ran are reported interval by interval too.
//   (For DMARC that is one more walk over the unreported rows, once per installation.)
// - An interval [begin, end) is due when end + kGrace <= now. Its end is the aligned boundary
//   after begin (begin is aligned except after close_now, which leaves the watermark at `now`).
// - close_now: every interval that has ended is built (grace or not), then the current one is
//   closed at `now`; all deliveries are due at once.
// - Batches: at most kMaxBatchReports reports or kMaxBatchBytes of gzip content each; every
//   batch carries expect_watermark (a racing builder on another node fails with Conflict
//   instead of building twice); the interval's last batch, even an empty one, moves the
//   watermark to the interval's end. A failure mid-interval leaves the committed batches'
//   counts reported and the watermark where it was: the next run builds the rest.
// - One builder of a kind at a time: run() takes the store's job lock "aggregate-<kind>"
//   (Store::try_lock_job; PostgreSQL: an advisory lock across the cluster) and returns
//   Conflict at once when another process holds it. The compare-and-set commits stay the
//   guarantee; the lock saves the losers the work.
// - domain filter: the watermark never moves (the other domains are not built).
// - dry run: nothing is committed, so later intervals would repeat the earlier ones' counts;
//   the due intervals are therefore built as one, from the first begin to the last end.
// - A report without any destination is not kept, but its counts are marked reported: no one
//   asked for them (RFC 7489 §6.3 / RFC 9989 §4.7: no rua=, no aggregate report).
//
// Not done here: destination verification, size limits and sending (the outbox runner).
#include "mailreport/outbound/aggregate_builder.hpp"

#include "mailreport/util/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <limits>

namespace mailreport::outbound {

namespace {

constexpr std::size_t kMaxBatchReports = 1000;
constexpr std::uint64_t kMaxBatchBytes = 8ull << 20;

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kWeek = 7 * kDay;
constexpr std::int64_t kFirstMonday = 4 * kDay;  // 1970-01-05 00:00 UTC (1970-01-01: Thursday)

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t length_of(config::AggregateFrequency f) {
  switch (f) {
    case config::AggregateFrequency::Hourly: return kHour;
    case config::AggregateFrequency::Daily: return kDay;
    case config::AggregateFrequency::Weekly: return kWeek;
    case config::AggregateFrequency::Never: break;
  }
  return 0;
}

// The end of the interval holding `t`: the first aligned boundary after it.
std::int64_t interval_end_after(std::int64_t t, config::AggregateFrequency f) {
  return align_interval(t, f) + length_of(f);
}

std::tm utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

std::string iso(std::int64_t t) {
  const std::tm tm = utc(t);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace

std::int64_t align_interval(std::int64_t t, config::AggregateFrequency frequency) {
  switch (frequency) {
    case config::AggregateFrequency::Hourly: return floor_div(t, kHour) * kHour;
    case config::AggregateFrequency::Daily: return floor_div(t, kDay) * kDay;
    case config::AggregateFrequency::Weekly:
      return floor_div(t - kFirstMonday, kWeek) * kWeek + kFirstMonday;
    case config::AggregateFrequency::Never: break;
  }
  return t;
}

std::string new_report_id(std::int64_t date_begin) {
  thread_local std::random_device device;
  const std::uint64_t random = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  const std::tm tm = utc(date_begin);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%016llx", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, static_cast<unsigned long long>(random));
  return buf;
}

std::string aggregate_filename(std::string_view submitter, std::string_view policy_domain,
                               std::int64_t begin, std::int64_t end, std::string_view report_id,
                               std::string_view extension) {
  std::string name;
  name.reserve(submitter.size() + policy_domain.size() + report_id.size() + extension.size() + 30);
  name.append(submitter).append("!").append(policy_domain).append("!");
  name.append(std::to_string(begin)).append("!").append(std::to_string(end)).append("!");
  name.append(report_id).append(".").append(extension);
  return name;
}

AggregateBuilder::AggregateBuilder(store::Store& store, std::unique_ptr<AggregateSource> source,
                                   Logger& log)
    : store_(store), source_(std::move(source)), log_(log), rng_(std::random_device{}()) {}

AggregateBuilder::~AggregateBuilder() = default;

std::int64_t AggregateBuilder::first_attempt(std::int64_t interval_end, std::int64_t now,
                                             std::chrono::seconds spread, bool close_now,
                                             std::mt19937_64& rng) {
  if (close_now) return now;
  const std::int64_t base = std::max(interval_end, now);
  if (spread.count() <= 0) return base;
  std::uniform_int_distribution<std::int64_t> offset(0, spread.count() - 1);
  return base + offset(rng);
}

Result<BuildStats> AggregateBuilder::run(const BuildOptions& options) {
  const config::AggregateReportSettings& settings = source_->settings();
  const config::AggregateFrequency frequency = settings.send;
  BuildStats stats;
  if (frequency == config::AggregateFrequency::Never) return stats;
  const std::string kind(source_->kind());
  const std::int64_t now = options.now;

  // One builder of a kind at a time per store (several nodes sharing PostgreSQL, or serve and
  // `mailreport send-reports` on one): the others leave the work to it rather than build the
  // same reports and lose the compare-and-set at commit. A dry run commits nothing.
  std::unique_ptr<store::JobLock> job;
  if (!options.dry_run) {
    auto lock = store_.try_lock_job("aggregate-" + kind);
    if (!lock) return std::move(lock).error();
    if (!*lock) {
      return make_error(ErrorCode::Conflict, kind + " reports are being built by another process");
    }
    job = std::move(*lock);
  }

  auto read_watermark = store_.aggregate_watermark(kind);
  if (!read_watermark) return std::move(read_watermark).error();
  std::optional<std::int64_t> watermark = *read_watermark;

  std::int64_t begin = 0;
  if (watermark) {
    begin = *watermark;
  } else {
    auto earliest = source_->earliest_unreported(store_, options.domain);
    if (!earliest) return std::move(earliest).error();
    begin = align_interval(std::min(earliest->value_or(now), now), frequency);
  }

  // The due intervals, in order.
  std::vector<std::pair<std::int64_t, std::int64_t>> due;
  for (std::int64_t b = begin;;) {
    const std::int64_t e = interval_end_after(b, frequency);
    if (e + kGrace.count() <= now || (options.close_now && e <= now)) {
      due.emplace_back(b, e);
      b = e;
      continue;
    }
    if (options.close_now && b < now) due.emplace_back(b, now);
    break;
  }
  if (due.empty()) return stats;
  if (options.dry_run && due.size() > 1) {
    log_.info(kind, "dry run: " + std::to_string(due.size()) + " intervals due, shown as one");
    due = {{due.front().first, due.back().second}};
  }

  const bool move_watermark = options.domain.empty() && !options.dry_run;
  for (const auto& due_interval : due) {
    // Plain names, not a structured binding: the lambdas below capture them (clang 14 cannot
    // capture structured bindings).
    const std::int64_t b = due_interval.first;
    const std::int64_t e = due_interval.second;
    BuildStats interval_stats;
    store::AggregateBatch batch;
    batch.kind = kind;
    batch.expect_watermark = watermark;
    std::uint64_t batch_bytes = 0;

    auto commit = [&](bool last) -> Status {
      if (options.dry_run) return {};
      if (last && move_watermark) batch.watermark = e;
      if (!last && batch.reports.empty() && batch.reported.empty()) return {};
      auto ids = store_.commit_aggregate_batch(batch);
      if (!ids) return std::move(ids).error();
      // Counted once committed (docs/metrics.md); `kind` is one of the store's kind names.
      if (!batch.reports.empty()) {
        Metrics::process()
            .counter("mailreport_aggregate_reports_built_total", "kind", kind)
            .fetch_add(batch.reports.size(), std::memory_order_relaxed);
      }
      batch.reports.clear();
      batch.reported.clear();
      batch_bytes = 0;
      return {};
    };

    BuiltReportSink sink = [&](BuiltReport&& built) -> Status {
      built.report.kind = kind;
      built.report.created_at = now;
      for (auto& d : built.deliveries) {
        d.kind = kind;
        d.created_at = now;
        d.next_attempt_at = first_attempt(e, now, settings.spread, options.close_now, rng_);
      }
      interval_stats.messages += built.report.messages;
      if (options.dry_run) {
        if (!built.deliveries.empty()) {
          ++interval_stats.reports;
          interval_stats.deliveries += built.deliveries.size();
          interval_stats.bytes += built.report.content.size();
        }
        return options.dry_run(built);
      }
      batch.reported.insert(batch.reported.end(), built.reported.begin(), built.reported.end());
      if (!built.deliveries.empty()) {
        ++interval_stats.reports;
        interval_stats.deliveries += built.deliveries.size();
        interval_stats.bytes += built.report.content.size();
        batch_bytes += built.report.content.size();
        batch.reports.push_back({std::move(built.report), std::move(built.deliveries)});
      }
      if (batch.reports.size() >= kMaxBatchReports || batch_bytes >= kMaxBatchBytes) {
        return commit(false);
      }
      return {};
    };

    BuildInterval interval{b, e, options.domain, now};
    Status st = source_->build(store_, interval, sink);
    if (st) st = commit(true);
    if (!st) {
      const Error& err = st.error();
      if (err.code == ErrorCode::Conflict) {
        log_.warning(kind, "interval " + iso(b) + " - " + iso(e) +
                               ": another builder got there first (" + err.message + ")");
      } else {
        log_.error(kind, "interval " + iso(b) + " - " + iso(e) + ": " + err.describe());
      }
      return std::move(st).error();
    }
    if (move_watermark) watermark = e;
    ++stats.intervals;
    stats.reports += interval_stats.reports;
    stats.deliveries += interval_stats.deliveries;
    stats.messages += interval_stats.messages;
    stats.bytes += interval_stats.bytes;
    log_.info(kind, std::string(options.dry_run ? "dry run: " : "") + "interval " + iso(b) + " - " +
                        iso(e) + (options.domain.empty() ? "" : " of " + options.domain) + ": " +
                        std::to_string(interval_stats.reports) + " reports, " +
                        std::to_string(interval_stats.deliveries) + " deliveries, " +
                        std::to_string(interval_stats.messages) + " messages, " +
                        std::to_string(interval_stats.bytes) + " bytes");
  }
  return stats;
}

}  // namespace mailreport::outbound
