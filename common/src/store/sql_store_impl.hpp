// The store's logic, written once over the SQL layer (sql_db.hpp) for SQLite and PostgreSQL
// (see mailreport/store/sqlite_store.hpp and pg_store.hpp). Private: sql_store.cpp (raw
// messages, lists, statistics, purge), sql_writer.cpp (the streaming ReportWriter),
// sql_reader.cpp (rebuilding report models), sql_evaluations.cpp, sql_outbox.cpp,
// sql_aggregate.cpp, sql_tls.cpp, sql_suppress.cpp share it. A backend gives the store its
// connections through a ConnectionSource (sqlite_store.cpp, pg_store.cpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mailreport/store/store.hpp"
#include "store/report_keys.hpp"
#include "store/sql_db.hpp"

namespace mailreport::store::sql {

// A connection lent to one caller until the lease ends (then `release` runs: unlock, return
// to a pool, close).
class Lease {
 public:
  Lease() = default;
  Lease(Connection& conn, std::function<void()> release)
      : conn_(&conn), release_(std::move(release)) {}
  Lease(Lease&& o) noexcept
      : conn_(std::exchange(o.conn_, nullptr)), release_(std::exchange(o.release_, {})) {}
  Lease& operator=(Lease&& o) noexcept {
    if (this != &o) {
      end();
      conn_ = std::exchange(o.conn_, nullptr);
      release_ = std::exchange(o.release_, {});
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { end(); }

  Connection& operator*() const noexcept { return *conn_; }
  Connection* operator->() const noexcept { return conn_; }

 private:
  void end() noexcept {
    if (release_) std::exchange(release_, {})();
    conn_ = nullptr;
  }
  Connection* conn_ = nullptr;
  std::function<void()> release_;
};

// Where a SqlStore gets its connections.
class ConnectionSource {
 public:
  virtual ~ConnectionSource() = default;
  // For a write transaction. SQLite: the one writer connection, under its mutex (one writer
  // per process; other processes wait on the file lock). PostgreSQL: a pooled connection.
  virtual Result<Lease> writer() = 0;
  // For reads of committed data. SQLite: the reader connection (the writer's for :memory:).
  virtual Result<Lease> reader() = 0;
  // For a snapshot walk whose callback may write to the store meanwhile (sql_aggregate.cpp).
  // `buffered` is set when the walk must read every row before calling back (SQLite
  // :memory:, whose one connection the callback's writes need).
  virtual Result<Lease> walker(bool& buffered) = 0;
  virtual Result<std::unique_ptr<JobLock>> try_lock_job(std::string_view name) = 0;
};

// What the logic needs to know of the backend's options.
struct StoreSettings {
  Dialect dialect = Dialect::Sqlite;
  int compression_level = 1;
  std::size_t chunk_size = 1 << 20;
  bool read_only = false;
};

class SqlWriteTx;

// A read transaction, so that the several SELECTs of one answer see one snapshot.
class ReadTx {
 public:
  explicit ReadTx(Connection& db) : db_(db), st_(db.exec(db.begin_read_sql())) {}
  ~ReadTx() {
    if (st_) (void)db_.exec("COMMIT");
  }
  ReadTx(const ReadTx&) = delete;
  ReadTx& operator=(const ReadTx&) = delete;
  const Status& status() const noexcept { return st_; }

 private:
  Connection& db_;
  Status st_;
};

class SqlStore final : public Store {
 public:
  SqlStore(StoreSettings settings, std::unique_ptr<ConnectionSource> source);

  Result<std::unique_ptr<WriteTransaction>> begin_write() override;
  Result<std::vector<ReportSummary>> list_reports(const ReportFilter& filter) override;
  Result<StoredReport> get_report(std::int64_t id) override;
  Result<std::vector<RawMessageInfo>> list_raw_messages(const RawFilter& filter) override;
  Result<RawMessageInfo> get_raw_message(std::int64_t id) override;
  Status read_raw(std::int64_t id,
                  const std::function<Status(std::span<const char>)>& out) override;
  Result<Summary> summary(std::size_t top_orgs) override;
  Result<PurgeResult> purge(std::int64_t before) override;
  // sql_evaluations.cpp
  Result<RecordStats> record_evaluations_counted(std::span<const auth::Evaluation> batch) override;
  Result<std::vector<EvaluationRow>> list_evaluations(const EvaluationFilter& filter) override;
  // sql_outbox.cpp
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
  // sql_aggregate.cpp
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
  Result<std::unique_ptr<JobLock>> try_lock_job(std::string_view name) override;
  // sql_dashboard.cpp (issue 6)
  Result<ReportPage> query_reports(const ReportQuery& query) override;
  Result<std::vector<DmarcDayPoint>> dmarc_daily(const SeriesQuery& query) override;
  Result<std::vector<SourceStat>> top_failing_sources(const SeriesQuery& query,
                                                      std::size_t limit) override;
  Result<bool> dmarc_source_known(std::string_view domain, std::string_view source_ip,
                                  std::int64_t before_id) override;
  Result<std::vector<TlsDayPoint>> tls_daily(const SeriesQuery& query) override;
  Result<std::vector<TlsFailureStat>> tls_failures_by_type(const SeriesQuery& query) override;
  Result<std::vector<OutboxStat>> outbox_stats() override;
  Result<std::vector<EvaluationStat>> evaluation_summary(const SeriesQuery& query) override;
  // sql_alerts.cpp (issue 6)
  Result<std::optional<std::int64_t>> alert_watermark(std::string_view name) override;
  Status commit_alerts(const AlertBatch& batch) override;
  Result<std::vector<WebhookEvent>> claim_webhook_events(std::string_view webhook,
                                                         std::int64_t now, std::size_t limit,
                                                         std::int64_t lease_seconds) override;
  Status webhook_delivered(std::span<const std::int64_t> ids) override;
  Status webhook_retry(std::span<const std::int64_t> ids, std::int64_t next_attempt_at,
                       std::string_view error) override;
  Result<std::uint64_t> discard_webhook_events(std::string_view webhook,
                                               std::int64_t created_before) override;
  Result<std::vector<std::pair<std::string, std::uint64_t>>> webhook_queue_depths() override;
  Result<std::vector<WebhookEvent>> list_webhook_events(std::string_view webhook) override;
  // sql_metrics.cpp (issue 6)
  Status add_metrics(std::span<const MetricValue> values, std::int64_t now) override;
  Result<std::vector<MetricValue>> list_metrics() override;

  const StoreSettings& settings() const noexcept { return settings_; }
  Dialect dialect() const noexcept { return settings_.dialect; }

  // A write transaction with its connection (for the store's own multi-statement writes).
  Result<std::unique_ptr<SqlWriteTx>> begin_tx();

  // Runs `body(db)` in a write transaction and commits; runs it again (up to kTxAttempts
  // times, after a short random pause) when it or the commit fails with a transient error
  // (PostgreSQL: serialization failure, deadlock). `body` returns Result<T> (Status for void)
  // and must do nothing outside the database (it may run more than once).
  template <class R, class Body>
  R in_write_tx(Body&& body);

 private:
  StoreSettings settings_;
  std::unique_ptr<ConnectionSource> source_;
};

class SqlWriteTx final : public WriteTransaction {
 public:
  SqlWriteTx(Lease lease, const StoreSettings& settings)
      : lease_(std::move(lease)), settings_(settings) {}
  ~SqlWriteTx() override;

  Connection& db() noexcept { return *lease_; }
  // The class of commit()'s failure (the connection is no longer ours then).
  ErrorClass commit_error() const noexcept { return commit_error_; }

  Result<RawMessageInfo> add_raw_message(const RawMeta& meta, ByteSource& src) override;
  std::unique_ptr<ReportWriter> report_writer(std::int64_t message_id,
                                              std::int64_t received_at) override;
  Result<std::uint64_t> delete_reports_of(std::int64_t message_id) override;
  Status set_parse_outcome(std::int64_t message_id, ParseStatus status,
                           std::string_view error) override;
  Status commit() override;

 private:
  Lease lease_;  // empty once committed
  const StoreSettings& settings_;
  bool done_ = false;
  ErrorClass commit_error_ = ErrorClass::None;
};

inline constexpr int kTxAttempts = 8;

template <class R, class Body>
R SqlStore::in_write_tx(Body&& body) {
  for (int attempt = 1;; ++attempt) {
    auto tx = begin_tx();
    if (!tx) return std::move(tx).error();
    Connection& db = (*tx)->db();
    R r = body(db);
    bool transient = false;
    if (r) {
      auto st = (*tx)->commit();
      if (st) return r;
      transient = (*tx)->commit_error() == ErrorClass::Transient;
      if (!transient || attempt >= kTxAttempts) return std::move(st).error();
    } else {
      transient = db.last_error() == ErrorClass::Transient;
      if (!transient || attempt >= kTxAttempts) return r;
    }
    (*tx).reset();  // rolls back, returns the connection
    thread_local std::minstd_rand rng(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(1, 5 << std::min(attempt, 5))(rng)));
  }
}

// Queues the batch's failure reports (Evaluation::failure_reports) in the outbox after their
// rate limits, inside the caller's write transaction (sql_outbox.cpp).
Status queue_failure_reports(Connection& db, std::span<const auth::Evaluation> batch,
                             RecordStats& stats);

// The streaming sink (sql_writer.cpp).
std::unique_ptr<ReportWriter> make_report_writer(Connection& db, std::int64_t message_id,
                                                 std::int64_t received_at);

// Rebuilds a stored report (sql_reader.cpp). NotFound when there is none.
Result<StoredReport> read_report(Connection& db, std::int64_t id);

// Column list and FROM clause shared by list_reports and read_report; read by summary_from_row.
extern const char* const kSummarySelect;
ReportSummary summary_from_row(const Query& q);

}  // namespace mailreport::store::sql
