// outbound/aggregate_builder: mailreport serve's (and `mailreport send-reports`') scheduler for
// aggregate reports (issue 5): at each interval end (report.<kind>.aggregate.send, aligned to
// UTC) it builds one report per policy domain (DMARC: and published policy; TLS: and TLSRPT
// record) from the store's unreported counts, and queues one outbox entry per destination, in
// batches committed with the counts they report (store.hpp, "aggregate reports we send").
//
// Exactly once: the kind's watermark says which interval is next; intervals are built in order
// from it, so after downtime every missed interval is built, one by one. Counts recorded late
// (for an interval already built) go into the next report. The builder runs kGrace after the
// interval ends, so that the milter's and the collector's last batches are in.
//
// The kind-specific part (which rows, how a report looks) is an AggregateSource: DMARC in
// dmarc_aggregate.cpp (make_dmarc_source), TLS in tls_aggregate.cpp (make_tls_source).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::outbound {

// How long after an interval's end its report is built.
inline constexpr std::chrono::seconds kGrace{300};

// One report the source built, with its destinations and the counts it holds.
struct BuiltReport {
  // kind, report_id, policy_domain, date_begin/date_end, filename, records, messages, content
  // (gzip) set by the source; created_at and id by the builder and the store.
  store::AggregateReport report;
  // recipient (address or https URL), reported_domain and payload (store/aggregate_payload.hpp,
  // report = 0) set by the source; the builder sets kind, created_at and next_attempt_at.
  std::vector<store::OutboxEntry> deliveries;
  std::vector<store::ReportedCount> reported;
};
using BuiltReportSink = std::function<Status(BuiltReport&&)>;

// The time range a build covers and what it is for.
struct BuildInterval {
  std::int64_t begin = 0;  // the interval's begin (reports may start earlier: rows recorded
                           // late for an earlier interval; date_begin is then their hour)
  std::int64_t end = 0;    // exclusive; rows/days beginning before it are read
  std::string domain;      // only this policy domain when not empty
  std::int64_t now = 0;
};

class AggregateSource {
 public:
  virtual ~AggregateSource() = default;
  virtual std::string_view kind() const noexcept = 0;  // store::kDmarcAggregateKind | kTls...
  virtual const config::AggregateReportSettings& settings() const noexcept = 0;
  // Reads the unreported counts for `interval` from `store` and hands each finished report to
  // `sink`, in policy-domain order, holding at most one policy domain's rows in memory. A sink
  // error stops the build with that error.
  virtual Status build(store::Store& store, const BuildInterval& interval,
                       const BuiltReportSink& sink) = 0;
  // The earliest time (row hour / day) with unreported counts, of `domain` only when not
  // empty; nullopt when there is none. The builder asks only while the kind has no watermark
  // yet: the first interval built is the one holding it (else the one holding `now`). The
  // default says "none".
  virtual Result<std::optional<std::int64_t>> earliest_unreported(store::Store& store,
                                                                  std::string_view domain) {
    (void)store;
    (void)domain;
    return std::optional<std::int64_t>{};
  }
};

struct BuildOptions {
  std::int64_t now = 0;
  // mailreport send-reports --now: the current interval is closed at `now` (everything
  // recorded until now is reported, sent at once without spread); the next one runs from now
  // to its aligned end.
  bool close_now = false;
  std::string domain;  // only this policy domain ("" = all); the watermark does not move
  // send-reports --dry-run: reports are built and handed here instead of being committed; no
  // count is marked reported and the watermark does not move.
  std::function<Status(const BuiltReport&)> dry_run;
};

struct BuildStats {
  std::uint64_t intervals = 0;  // intervals built (or closed with nothing to report)
  std::uint64_t reports = 0;
  std::uint64_t deliveries = 0;  // outbox entries queued
  std::uint64_t messages = 0;    // DMARC messages | TLS sessions reported
  std::uint64_t bytes = 0;       // gzip bytes of the reports
};

// A fresh report id: unique among our reports, safe in a Subject, a filename and XML/JSON
// ("<begin as YYYYMMDD><16 hex digits from a random source>": letters and digits only, as
// RFC 9990 §3.5.2's filename unique-id = 1*(ALPHA / DIGIT) requires).
std::string new_report_id(std::int64_t date_begin);
// RFC 7489 §7.2.1.1 / RFC 8460 §5.3: "submitter!policy-domain!begin!end!id.<extension>"
// (extension "xml.gz" or "json.gz").
std::string aggregate_filename(std::string_view submitter, std::string_view policy_domain,
                               std::int64_t begin, std::int64_t end, std::string_view report_id,
                               std::string_view extension);
// The start of the interval of `frequency` that holds `t` (UTC; weeks start on Monday).
std::int64_t align_interval(std::int64_t t, config::AggregateFrequency frequency);

class AggregateBuilder {
 public:
  // `log` gets one line per interval built and per skipped destination.
  AggregateBuilder(store::Store& store, std::unique_ptr<AggregateSource> source, Logger& log);
  ~AggregateBuilder();

  // Builds every interval due at options.now (ended at least kGrace ago, or the current one
  // with close_now), in order, committing in batches of bounded size. Conflict when another
  // builder (another node) committed the same interval first: nothing was built twice; stop
  // and let that one finish. With frequency Never nothing is built.
  Result<BuildStats> run(const BuildOptions& options);

  // The delivery's first attempt: at once for close_now, else at a random time in
  // [max(interval end, now), + spread). Exposed for tests; `rng` seeded by the caller.
  static std::int64_t first_attempt(std::int64_t interval_end, std::int64_t now,
                                    std::chrono::seconds spread, bool close_now,
                                    std::mt19937_64& rng);

 private:
  store::Store& store_;
  std::unique_ptr<AggregateSource> source_;
  Logger& log_;
  std::mt19937_64 rng_;
};

}  // namespace mailreport::outbound
