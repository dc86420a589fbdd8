// The PostgreSQL backend of the store (see mailreport/store/pg_store.hpp): a pool of libpq
// connections lent to the store's logic (sql_store_impl.hpp), and job locks as session
// advisory locks.
//
// - The pool opens connections as they are needed, up to pool_size, keeps them idle for reuse,
//   and closes one that was lost (PgConnection::broken) instead of lending it again. A caller
//   waits for a free connection up to acquire_timeout.
// - An aggregate walk holds one connection (its cursor) while its callback commits on
//   another, so the pool has at least two.
// - A job lock (Store::try_lock_job) is pg_try_advisory_lock on a connection of its own, kept
//   open while the lock is held: the lock ends with the session, so a node that dies releases
//   it at once (the server notices the closed socket).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "mailreport/store/pg_store.hpp"
#include "store/pg_db.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

class PgJobLock final : public JobLock {
 public:
  explicit PgJobLock(std::unique_ptr<PgConnection> conn) : conn_(std::move(conn)) {}
  // Closing the session releases the lock; nothing else uses this connection.
  ~PgJobLock() override = default;

 private:
  std::unique_ptr<PgConnection> conn_;
};

class PgSource final : public ConnectionSource {
 public:
  explicit PgSource(PgOptions options) : options_(std::move(options)) {
    if (options_.pool_size < 2) options_.pool_size = 2;
  }
  ~PgSource() override {
    for (PgConnection* c : idle_) delete c;
  }
  PgSource(const PgSource&) = delete;
  PgSource& operator=(const PgSource&) = delete;

  Result<Lease> writer() override { return acquire(); }
  Result<Lease> reader() override { return acquire(); }
  Result<Lease> walker(bool& buffered) override {
    buffered = false;
    return acquire();
  }

  Result<std::unique_ptr<JobLock>> try_lock_job(std::string_view name) override {
    auto conn = PgConnection::connect(options_.url);
    if (!conn) return std::move(conn).error();
    bool got = false;
    {
      auto q = (*conn)->query("SELECT pg_try_advisory_lock(CAST(?1 AS BIGINT))");
      if (!q) return std::move(q).error();
      auto row = q->bind(1, advisory_lock_key("job", name)).step();
      if (!row) return std::move(row).error();
      got = *row && q->i64(0) != 0;
    }
    if (!got) return std::unique_ptr<JobLock>();
    return std::unique_ptr<JobLock>(new PgJobLock(std::move(*conn)));
  }

  // Opens the first connection (so that a wrong URL fails at start) and migrates.
  Status start() {
    auto lease = acquire();
    if (!lease) return std::move(lease).error();
    if (options_.read_only) return check_pg_schema(**lease);
    return migrate_pg(**lease);
  }

 private:
  Result<Lease> acquire() {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
    while (idle_.empty() && open_ >= options_.pool_size) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= options_.pool_size) {
        return make_error(ErrorCode::Store,
                          "no free PostgreSQL connection in " +
                              std::to_string(options_.acquire_timeout.count()) +
                              " ms (store.pool-size = " + std::to_string(options_.pool_size) + ")");
      }
    }
    PgConnection* conn = nullptr;
    if (!idle_.empty()) {
      conn = idle_.back();
      idle_.pop_back();
    } else {
      ++open_;
      lock.unlock();
      auto made = PgConnection::connect(options_.url);
      if (!made) {
        lock.lock();
        --open_;
        cv_.notify_one();
        return std::move(made).error();
      }
      conn = made->release();
    }
    return Lease(*conn, [this, conn] { release(conn); });
  }

  void release(PgConnection* conn) {
    std::lock_guard lock(mu_);
    if (conn->broken()) {
      delete conn;
      --open_;
    } else {
      idle_.push_back(conn);
    }
    cv_.notify_one();
  }

  PgOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PgConnection*> idle_;  // owned
  std::size_t open_ = 0;             // lent + idle
};

}  // namespace

}  // namespace mailreport::store::sql

namespace mailreport::store {

int postgres_schema_version() noexcept {
  return sql::pg_schema_version();
}

Result<std::unique_ptr<Store>> open_postgres_store(const PgOptions& options) {
  if (options.url.empty()) return make_error(ErrorCode::Invalid, "no PostgreSQL URL (store.url)");
  auto source = std::make_unique<sql::PgSource>(options);
  if (auto st = source->start(); !st) return std::move(st).error();
  sql::StoreSettings settings;
  settings.dialect = sql::Dialect::Postgres;
  settings.compression_level = options.compression_level;
  settings.chunk_size = options.chunk_size;
  settings.read_only = options.read_only;
  return std::unique_ptr<Store>(std::make_unique<sql::SqlStore>(settings, std::move(source)));
}

}  // namespace mailreport::store
