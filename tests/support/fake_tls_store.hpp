// A Store for the TLS-RPT collector and TLS report source tests: it remembers the batches of
// datagrams and the rejected datagrams it is given, can be told to fail, and hands out
// the TLS policy rows a test sets. Everything else is Unsupported.
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "mailreport/store/store.hpp"

namespace mailreport::test {

class FakeTlsStore final : public store::Store {
 public:
  struct Batch {
    std::vector<report::TlsrptDatagram> datagrams;
    std::int64_t received_at = 0;
  };
  struct Rejected {
    std::string datagram;
    std::string reason;
    std::int64_t received_at = 0;
  };

  // What the store was given (copies, under the lock).
  std::vector<Batch> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::vector<Rejected> rejected() const {
    std::lock_guard lock(mu_);
    return rejected_;
  }
  // The next `n` calls of record_tls_results fail with ErrorCode::Store.
  void fail_next(int n) {
    std::lock_guard lock(mu_);
    fail_ = n;
  }
  int record_calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // Rows for for_each_unreported_tls; ordered by it (domain, record, day, id).
  std::vector<store::TlsPolicyCount> tls_rows;

  Status record_tls_results(std::span<const report::TlsrptDatagram> batch,
                            std::int64_t received_at) override {
    std::lock_guard lock(mu_);
    ++calls_;
    if (fail_ > 0) {
      --fail_;
      return make_error(ErrorCode::Store, "injected failure");
    }
    batches_.push_back({{batch.begin(), batch.end()}, received_at});
    return {};
  }
  Status record_tls_rejected(std::string_view datagram, std::string_view reason,
                             std::int64_t received_at) override {
    std::lock_guard lock(mu_);
    rejected_.push_back({std::string(datagram), std::string(reason), received_at});
    return {};
  }
  Status for_each_unreported_tls(
      std::int64_t end, std::string_view domain,
      const std::function<bool(const store::TlsPolicyCount&)>& fn) override {
    auto rows = tls_rows;
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return std::tie(a.domain, a.record, a.day, a.id) < std::tie(b.domain, b.record, b.day, b.id);
    });
    for (const auto& r : rows) {
      if (r.day >= end || (!domain.empty() && r.domain != domain)) continue;
      if (!fn(r)) break;
    }
    return {};
  }

  // ---- the rest is not needed
  static Error no() { return make_error(ErrorCode::Unsupported, "fake store"); }
  Result<std::unique_ptr<store::WriteTransaction>> begin_write() override { return no(); }
  Result<std::vector<store::ReportSummary>> list_reports(const store::ReportFilter&) override {
    return no();
  }
  Result<store::StoredReport> get_report(std::int64_t) override { return no(); }
  Result<std::vector<store::RawMessageInfo>> list_raw_messages(const store::RawFilter&) override {
    return no();
  }
  Result<store::RawMessageInfo> get_raw_message(std::int64_t) override { return no(); }
  Status read_raw(std::int64_t, const std::function<Status(std::span<const char>)>&) override {
    return no();
  }
  Result<store::Summary> summary(std::size_t) override { return no(); }
  Result<store::PurgeResult> purge(std::int64_t) override { return no(); }
  Status record_evaluations(std::span<const auth::Evaluation>) override { return no(); }
  Result<store::RecordStats> record_evaluations_counted(
      std::span<const auth::Evaluation>) override {
    return no();
  }
  Result<std::vector<store::EvaluationRow>> list_evaluations(
      const store::EvaluationFilter&) override {
    return no();
  }
  Result<std::int64_t> enqueue_outbox(const store::OutboxEntry&) override { return no(); }
  Result<std::vector<store::OutboxEntry>> claim_outbox(std::int64_t, std::size_t,
                                                       std::int64_t) override {
    return no();
  }
  Status outbox_sent(std::int64_t, std::int64_t, std::string_view) override { return no(); }
  Status outbox_retry(std::int64_t, std::int64_t, std::string_view) override { return no(); }
  Status outbox_failed(std::int64_t, std::int64_t, std::string_view) override { return no(); }
  Result<std::vector<store::OutboxEntry>> list_outbox(const store::OutboxFilter&) override {
    return no();
  }
  Result<store::OutboxEntry> find_outbox_by_message_id(std::string_view) override { return no(); }
  Result<std::optional<std::int64_t>> aggregate_watermark(std::string_view) override {
    return no();
  }
  Status for_each_unreported_evaluation(
      std::int64_t, std::string_view,
      const std::function<bool(const store::EvaluationRow&)>&) override {
    return no();
  }
  Result<std::vector<std::int64_t>> commit_aggregate_batch(const store::AggregateBatch&) override {
    return no();
  }
  Result<store::AggregateReport> get_aggregate_report(std::int64_t) override { return no(); }
  Result<std::vector<store::AggregateReport>> list_aggregate_reports(
      const store::AggregateReportFilter&) override {
    return no();
  }
  Result<std::vector<store::TlsPolicyCount>> list_tls_counts(std::int64_t,
                                                             std::string_view) override {
    return no();
  }
  Result<store::BounceOutcome> record_report_bounce(std::string_view, std::string_view,
                                                    std::int64_t, unsigned) override {
    return no();
  }
  Result<bool> is_suppressed(std::string_view) override { return no(); }
  Status add_suppression(std::string_view, std::string_view, std::int64_t) override { return no(); }
  Status remove_suppression(std::string_view) override { return no(); }
  Result<std::vector<store::Suppression>> list_suppressions() override { return no(); }
  Result<std::unique_ptr<store::JobLock>> try_lock_job(std::string_view) override {
    return std::make_unique<store::JobLock>();
  }

  // Issue 6's queries, webhooks and metrics: not used by the tests of this store.
  Result<store::ReportPage> query_reports(const store::ReportQuery&) override { return no(); }
  Result<std::vector<store::DmarcDayPoint>> dmarc_daily(const store::SeriesQuery&) override {
    return no();
  }
  Result<std::vector<store::SourceStat>> top_failing_sources(const store::SeriesQuery&,
                                                             std::size_t) override {
    return no();
  }
  Result<bool> dmarc_source_known(std::string_view, std::string_view, std::int64_t) override {
    return no();
  }
  Result<std::vector<store::TlsDayPoint>> tls_daily(const store::SeriesQuery&) override {
    return no();
  }
  Result<std::vector<store::TlsFailureStat>> tls_failures_by_type(
      const store::SeriesQuery&) override {
    return no();
  }
  Result<std::vector<store::OutboxStat>> outbox_stats() override { return no(); }
  Result<std::vector<store::EvaluationStat>> evaluation_summary(
      const store::SeriesQuery&) override {
    return no();
  }
  Result<std::optional<std::int64_t>> alert_watermark(std::string_view) override { return no(); }
  Status commit_alerts(const store::AlertBatch&) override { return no(); }
  Result<std::vector<store::WebhookEvent>> claim_webhook_events(std::string_view, std::int64_t,
                                                                std::size_t,
                                                                std::int64_t) override {
    return no();
  }
  Status webhook_delivered(std::span<const std::int64_t>) override { return no(); }
  Status webhook_retry(std::span<const std::int64_t>, std::int64_t, std::string_view) override {
    return no();
  }
  Result<std::uint64_t> discard_webhook_events(std::string_view, std::int64_t) override {
    return no();
  }
  Result<std::vector<std::pair<std::string, std::uint64_t>>> webhook_queue_depths() override {
    return no();
  }
  Result<std::vector<store::WebhookEvent>> list_webhook_events(std::string_view) override {
    return no();
  }
  Status add_metrics(std::span<const store::MetricValue>, std::int64_t) override { return no(); }
  Result<std::vector<store::MetricValue>> list_metrics() override { return no(); }

 private:
  mutable std::mutex mu_;
  std::vector<Batch> batches_;
  std::vector<Rejected> rejected_;
  int fail_ = 0;
  int calls_ = 0;
};

}  // namespace mailreport::test
