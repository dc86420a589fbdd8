// The SQLite backend of the store (see mailreport/store/sqlite_store.hpp): opening and
// configuring the file, and the connections the store's logic (sql_store_impl.hpp) runs on:
// one writer behind a mutex, one reader behind another (the writer's for ":memory:"), a
// private read-only connection per aggregate walk, and job locks as flocks beside the file.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "mailreport/store/sqlite_store.hpp"
#include "store/schema.hpp"
#include "store/sql_store_impl.hpp"
#include "store/sqlite_db.hpp"

namespace mailreport::store::sql {

namespace {

// Per-connection settings; PRAGMA foreign_keys and busy_timeout are not persistent.
Status configure(SqliteConnection& db, const SqliteOptions& o, bool writer) {
  sqlite3_busy_timeout(db.get(), static_cast<int>(o.busy_timeout.count()));
  if (auto st = db.exec("PRAGMA foreign_keys = ON"); !st) return st;
  if (o.read_only) return db.exec("PRAGMA query_only = ON");
  if (writer) {
    // WAL: readers do not block the writer nor the writer readers; one file plus -wal/-shm.
    if (auto st = db.exec("PRAGMA journal_mode = WAL"); !st) return st;
    // After a checkpoint the WAL is cut back to this size, so that one large message does not
    // leave a file of its size behind.
    if (auto st = db.exec("PRAGMA journal_size_limit = 67108864"); !st) return st;
    // A 16 MiB page cache (default 2 MiB) keeps the index B-trees of a large report's records
    // in memory while they are written; measured ~25% faster ingest, within the memory budget.
    if (auto st = db.exec("PRAGMA cache_size = -16384"); !st) return st;
    if (o.max_size > 0) {
      auto q = db.query("PRAGMA page_size");
      if (!q) return std::move(q).error();
      auto row = q->step();
      if (!row) return std::move(row).error();
      std::uint64_t page = std::max<std::uint64_t>(q->u64(0), 512);
      std::string sql = "PRAGMA max_page_count = " +
                        std::to_string(std::max<std::uint64_t>(o.max_size / page, 1));
      if (auto st = db.exec(sql); !st) return st;
    }
  }
  // RFC 2033 §4.2: a 250 promises the message is kept; FULL syncs the WAL at every commit.
  if (auto st =
          db.exec(o.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
      !st) {
    return st;
  }
  if (!writer) return db.exec("PRAGMA query_only = ON");
  return {};
}

// Job names held in this process (a :memory: store has no file to lock; and flock, per open
// file description, would also refuse a second holder here, but only for files).
std::mutex g_jobs_mu;
std::set<std::string> g_jobs;

class SqliteJobLock final : public JobLock {
 public:
  SqliteJobLock(std::string key, int fd) : key_(std::move(key)), fd_(fd) {}
  ~SqliteJobLock() override {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
    std::lock_guard lock(g_jobs_mu);
    g_jobs.erase(key_);
  }
  SqliteJobLock(const SqliteJobLock&) = delete;
  SqliteJobLock& operator=(const SqliteJobLock&) = delete;

 private:
  std::string key_;
  int fd_;
};

class SqliteSource final : public ConnectionSource {
 public:
  SqliteSource(SqliteOptions options, std::unique_ptr<SqliteConnection> writer,
               std::unique_ptr<SqliteConnection> reader)
      : options_(std::move(options)), writer_(std::move(writer)), reader_(std::move(reader)) {}

  Result<Lease> writer() override {
    write_mu_.lock();
    return Lease(*writer_, [this] { write_mu_.unlock(); });
  }

  Result<Lease> reader() override {
    std::mutex& mu = reader_ ? read_mu_ : write_mu_;
    mu.lock();
    return Lease(reader_ ? *reader_ : *writer_, [&mu] { mu.unlock(); });
  }

  Result<Lease> walker(bool& buffered) override {
    if (memory()) {
      buffered = true;
      return writer();
    }
    buffered = false;
    auto db = SqliteConnection::open(
        options_.path, options_.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
    if (!db) return std::move(db).error();
    sqlite3_busy_timeout((*db)->get(), static_cast<int>(options_.busy_timeout.count()));
    if (auto st = (*db)->exec("PRAGMA query_only = ON"); !st) return std::move(st).error();
    SqliteConnection* raw = db->release();
    return Lease(*raw, [raw] { delete raw; });
  }

  Result<std::unique_ptr<JobLock>> try_lock_job(std::string_view name) override {
    std::string key =
        (memory() ? ":memory:" + std::to_string(reinterpret_cast<std::uintptr_t>(this))
                  : options_.path.string()) +
        "\n" + std::string(name);
    {
      std::lock_guard lock(g_jobs_mu);
      if (!g_jobs.insert(key).second) return std::unique_ptr<JobLock>();
    }
    int fd = -1;
    if (!memory()) {
      // Beside the store: other processes (another serve, the CLI) see the same file.
      std::string path = options_.path.string() + "-job-" + std::string(name) + ".lock";
      fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
      if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (fd >= 0) ::close(fd);
        std::lock_guard lock(g_jobs_mu);
        g_jobs.erase(key);
        if (fd >= 0 && err == EWOULDBLOCK) return std::unique_ptr<JobLock>();
        return make_error(ErrorCode::Io, path + ": " + std::strerror(err));
      }
    }
    return std::unique_ptr<JobLock>(new SqliteJobLock(std::move(key), fd));
  }

 private:
  bool memory() const { return options_.path == ":memory:"; }

  SqliteOptions options_;
  std::mutex write_mu_;
  std::unique_ptr<SqliteConnection> writer_;
  std::mutex read_mu_;
  std::unique_ptr<SqliteConnection> reader_;  // null: reads use writer_
};

}  // namespace

}  // namespace mailreport::store::sql

namespace mailreport::store {

int sqlite_schema_version() noexcept {
  return sqlite::latest_version();
}

Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options) {
  using sql::SqliteConnection;
  const bool memory = options.path == ":memory:";
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  auto writer = SqliteConnection::open(options.path, flags);
  if (!writer) return std::move(writer).error();
  auto context = [&options](Error e) {
    e.message = options.path.string() + ": " + e.message;
    return e;
  };
  if (auto st = sql::configure(**writer, options, true); !st) return context(st.error());
  if (options.read_only) {
    auto version = sqlite::current_version(**writer);
    if (!version) return context(std::move(version).error());
    if (*version == 0)
      return make_error(ErrorCode::Store, options.path.string() + ": not a mailreport store");
    if (*version > sqlite::latest_version()) {
      return make_error(ErrorCode::Store, options.path.string() + ": store schema version " +
                                              std::to_string(*version) +
                                              " is newer than this build's");
    }
  } else if (auto st = sqlite::migrate(**writer); !st) {
    return context(st.error());
  }
  std::unique_ptr<SqliteConnection> reader;
  if (!memory && !options.read_only) {
    auto r = SqliteConnection::open(options.path, SQLITE_OPEN_READWRITE);
    if (!r) return std::move(r).error();
    if (auto st = sql::configure(**r, options, false); !st) return context(st.error());
    reader = std::move(*r);
  }
  sql::StoreSettings settings;
  settings.dialect = sql::Dialect::Sqlite;
  settings.compression_level = options.compression_level;
  settings.chunk_size = options.chunk_size;
  settings.read_only = options.read_only;
  return std::unique_ptr<Store>(std::make_unique<sql::SqlStore>(
      settings,
      std::make_unique<sql::SqliteSource>(options, std::move(*writer), std::move(reader))));
}

}  // namespace mailreport::store
