// The SQLite implementation of store::Store (see mailreport/store/sqlite_store.hpp). Private:
// sqlite_store.cpp (opening, raw messages, lists, statistics, purge), sqlite_writer.cpp (the
// streaming ReportWriter) and sqlite_reader.cpp (rebuilding report models) share it.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/store/store.hpp"
#include "store/report_keys.hpp"
#include "store/sqlite_db.hpp"

namespace mailreport::store::sqlite {

class SqliteStore final : public Store {
 public:
  SqliteStore(SqliteOptions options, std::unique_ptr<Connection> writer,
              std::unique_ptr<Connection> reader);

  Result<std::unique_ptr<WriteTransaction>> begin_write() override;
  Result<std::vector<ReportSummary>> list_reports(const ReportFilter& filter) override;
  Result<StoredReport> get_report(std::int64_t id) override;
  Result<std::vector<RawMessageInfo>> list_raw_messages(const RawFilter& filter) override;
  Result<RawMessageInfo> get_raw_message(std::int64_t id) override;
  Status read_raw(std::int64_t id,
                  const std::function<Status(std::span<const char>)>& out) override;
  Result<Summary> summary(std::size_t top_orgs) override;
  Result<PurgeResult> purge(std::int64_t before) override;
  // sqlite_evaluations.cpp
  Result<RecordStats> record_evaluations_counted(std::span<const auth::Evaluation> batch) override;
  Result<std::vector<EvaluationRow>> list_evaluations(const EvaluationFilter& filter) override;
  // sqlite_outbox.cpp
  Status record_evaluations(std::span<const auth::Evaluation> batch) override;
  Result<std::int64_t> enqueue_outbox(const OutboxEntry& entry) override;
  Result<std::vector<OutboxEntry>> claim_outbox(std::int64_t now, std::size_t limit,
                                                std::int64_t lease_seconds) override;
  Status outbox_sent(std::int64_t id, std::int64_t now, std::string_view message_id) override;
  Status outbox_retry(std::int64_t id, std::int64_t next_attempt_at,
                      std::string_view error) override;
  Status outbox_failed(std::int64_t id, std::int64_t now, std::string_view error) override;
  Result<std::vector<OutboxEntry>> list_outbox(const OutboxFilter& filter) override;
  Result<OutboxEntry> find_outbox_by_message_id(std::string_view message_id) override;
  // sqlite_aggregate.cpp
  Result<std::optional<std::int64_t>> aggregate_watermark(std::string_view kind) override;
  Status for_each_unreported_evaluation(
      std::int64_t end, std::string_view domain,
      const std::function<bool(const EvaluationRow&)>& fn) override;
  Status for_each_unreported_tls(std::int64_t end, std::string_view domain,
                                 const std::function<bool(const TlsPolicyCount&)>& fn) override;
  Result<std::vector<std::int64_t>> commit_aggregate_batch(const AggregateBatch& batch) override;
  Result<AggregateReport> get_aggregate_report(std::int64_t id) override;
  Result<std::vector<AggregateReport>> list_aggregate_reports(
      const AggregateReportFilter& filter) override;
  Status record_tls_results(std::span<const report::TlsrptDatagram> batch,
                            std::int64_t received_at) override;
  Status record_tls_rejected(std::string_view datagram, std::string_view reason,
                             std::int64_t received_at) override;
  Result<std::vector<TlsPolicyCount>> list_tls_counts(std::int64_t since,
                                                      std::string_view domain) override;
  Result<BounceOutcome> record_report_bounce(std::string_view message_id, std::string_view reason,
                                             std::int64_t now, unsigned threshold) override;
  Result<bool> is_suppressed(std::string_view address) override;
  Status add_suppression(std::string_view address, std::string_view reason,
                         std::int64_t now) override;
  Status remove_suppression(std::string_view address) override;
  Result<std::vector<Suppression>> list_suppressions() override;
  // sqlite_store.cpp
  Result<std::unique_ptr<JobLock>> try_lock_job(std::string_view name) override;

  const SqliteOptions& options() const noexcept { return options_; }

 private:
  // The connection and lock for reads: a separate one for a file, the writer's for :memory:.
  Connection& reader() noexcept { return reader_ ? *reader_ : *writer_; }
  std::mutex& reader_mutex() noexcept { return reader_ ? read_mu_ : write_mu_; }

  SqliteOptions options_;
  std::mutex write_mu_;
  std::unique_ptr<Connection> writer_;
  std::mutex read_mu_;
  std::unique_ptr<Connection> reader_;  // null: reads use writer_
};

class SqliteWriteTx final : public WriteTransaction {
 public:
  SqliteWriteTx(std::unique_lock<std::mutex> lock, Connection& db, const SqliteOptions& options)
      : lock_(std::move(lock)), db_(db), options_(options) {}
  ~SqliteWriteTx() override;

  Result<RawMessageInfo> add_raw_message(const RawMeta& meta, ByteSource& src) override;
  std::unique_ptr<ReportWriter> report_writer(std::int64_t message_id,
                                              std::int64_t received_at) override;
  Result<std::uint64_t> delete_reports_of(std::int64_t message_id) override;
  Status set_parse_outcome(std::int64_t message_id, ParseStatus status,
                           std::string_view error) override;
  Status commit() override;

 private:
  std::unique_lock<std::mutex> lock_;
  Connection& db_;
  const SqliteOptions& options_;
  bool done_ = false;
};

// Queues the batch's failure reports (Evaluation::failure_reports) in the outbox after their
// rate limits, inside the caller's write transaction (sqlite_outbox.cpp).
Status queue_failure_reports(Connection& db, std::span<const auth::Evaluation> batch,
                             RecordStats& stats);

// The streaming sink (sqlite_writer.cpp).
std::unique_ptr<ReportWriter> make_report_writer(Connection& db, std::int64_t message_id,
                                                 std::int64_t received_at);

// Rebuilds a stored report (sqlite_reader.cpp). NotFound when there is none.
Result<StoredReport> read_report(Connection& db, std::int64_t id);

// Column list and FROM clause shared by list_reports and read_report; read by summary_from_row.
extern const char* const kSummarySelect;
ReportSummary summary_from_row(const Query& q);

}  // namespace mailreport::store::sqlite
