// Store failures come back as ErrorCode::Store with nothing half-written (SQLite only: a
// read-only, write-protected, full or busy file); writers from many threads are serialised
// (StoreConcurrency, on SQLite and PostgreSQL).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using report::ReportSink;
using test::count_rows;
using test::filter;
using test::open_store;
using test::options_for;
using test::raw_filter;
using test::TempDir;

TEST(StoreFailure, AReadOnlyStoreRefusesWrites) {
  TempDir dir;
  auto path = dir / "s.db";
  { ASSERT_TRUE(open_store(path)); }
  auto ro = open_sqlite_store(options_for(path, true));
  ASSERT_TRUE(ro) << ro.error().describe();
  auto tx = (*ro)->begin_write();
  ASSERT_FALSE(tx);
  EXPECT_EQ(tx.error().code, ErrorCode::Store);
  auto list = (*ro)->list_reports({});  // reading still works
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

TEST(StoreFailure, AWriteProtectedFileFailsWithAStoreError) {
  TempDir dir;
  auto path = dir / "s.db";
  { ASSERT_TRUE(open_store(path)); }
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0555), 0);
  // True when the store refuses the write somewhere between open and commit.
  auto write_refused = [&]() -> bool {
    auto s = open_sqlite_store(options_for(path));
    if (!s) return true;
    auto tx = (*s)->begin_write();
    if (!tx) return true;
    MemorySource src("x");
    auto info = (*tx)->add_raw_message({1, "t", "", {}, ""}, src);
    if (!info) return true;
    return !(*tx)->commit();
  };
  if (::geteuid() != 0) {
    EXPECT_TRUE(write_refused());
  } else {
    // Root ignores file permissions (CI runs as root): try as `nobody` in a child process.
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
      ::_exit(write_refused() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the write was committed; 2: cannot become nobody";
  }
  ::chmod(dir.path().c_str(), 0755);
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(count_rows(path, "raw_messages"), 0);
}

TEST(StoreFailure, AFullStoreFailsMidMessageAndKeepsNothingOfIt) {
  TempDir dir;
  auto path = dir / "s.db";
  SqliteOptions options;
  options.max_size = 2 << 20;  // like a disk with 2 MiB
  options.chunk_size = 64 << 10;
  auto store = open_store(path, options);
  ASSERT_TRUE(store);
  // Incompressible bytes, bigger than the store may grow.
  std::string big(4 << 20, '\0');
  std::uint32_t x = 12345;
  for (char& c : big) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  {
    auto tx = store->begin_write();
    ASSERT_TRUE(tx);
    MemorySource src(big);
    auto info = (*tx)->add_raw_message({1, "test", "", {}, ""}, src);
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().code, ErrorCode::Store);
  }
  EXPECT_EQ(count_rows(path, "raw_messages"), 0);
  EXPECT_EQ(count_rows(path, "raw_chunks"), 0);
  // Small messages still fit afterwards.
  auto tx = store->begin_write();
  ASSERT_TRUE(tx);
  MemorySource small("small");
  ASSERT_TRUE((*tx)->add_raw_message({1, "test", "", {}, ""}, small));
  ASSERT_TRUE((*tx)->commit());
  EXPECT_EQ(count_rows(path, "raw_messages"), 1);
}

TEST(StoreFailure, ABusyStoreTimesOutWithAStoreError) {
  TempDir dir;
  auto path = dir / "s.db";
  SqliteOptions options;
  options.busy_timeout = std::chrono::milliseconds(100);
  auto store = open_store(path, options);
  ASSERT_TRUE(store);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> other(raw, &sqlite3_close);
  ASSERT_EQ(sqlite3_exec(raw, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto tx = store->begin_write();
  ASSERT_FALSE(tx);
  EXPECT_EQ(tx.error().code, ErrorCode::Store);
  ASSERT_EQ(sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_TRUE(store->begin_write());
}

class StoreConcurrency : public test::StoreTest {};

TEST_P(StoreConcurrency, EightWritersAndAReader) {
  auto store = open_store();
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10;
  std::atomic<int> failures{0};
  std::mutex errors_mu;
  std::vector<std::string> errors;  // the first few, for the failure message
  // Counts a failed step (and keeps its message); whether `r` succeeded.
  auto ok = [&](const char* what, const auto& r) {
    if (r) return true;
    ++failures;
    std::lock_guard lock(errors_mu);
    if (errors.size() < 5) errors.push_back(std::string(what) + ": " + r.error().describe());
    return false;
  };
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      auto l = store->list_reports(filter(std::nullopt, "", std::nullopt, 5));
      auto s = store->summary(3);
      ok("list_reports", l);
      ok("summary", s);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto tx = store->begin_write();
        if (!ok("begin_write", tx)) continue;
        std::string raw = "message " + std::to_string(t) + "/" + std::to_string(i);
        MemorySource src(raw);
        auto info = (*tx)->add_raw_message({1700000000, "test", "", {}, ""}, src);
        if (!ok("add_raw_message", info)) continue;
        auto w = (*tx)->report_writer(info->id, 1700000000);
        // Every thread also sends one report that all the others send too.
        auto shared = test::sample_dmarc("shared");
        auto own = test::sample_dmarc("t" + std::to_string(t) + "-" + std::to_string(i));
        for (const auto* m : {&own, &shared}) {
          ok("dmarc_begin", w->dmarc_begin(m->header));
          for (auto r : m->records) ok("dmarc_record", w->dmarc_record(std::move(r)));
          ok("dmarc_end", w->dmarc_end(m->header, m->errors));
        }
        ok("finish", w->finish());
        w.reset();
        ok("set_parse_outcome", (*tx)->set_parse_outcome(info->id, ParseStatus::Parsed, ""));
        ok("commit", (*tx)->commit());
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();
  std::string first_errors;
  for (const auto& e : errors) first_errors += "\n  " + e;
  EXPECT_EQ(failures.load(), 0) << "first failures:" << first_errors;
  EXPECT_EQ(count_rows("raw_messages"), kThreads * kPerThread);
  EXPECT_EQ(count_rows("reports"), kThreads * kPerThread + 1);
  EXPECT_EQ(count_rows("dmarc_records"), 3 * (kThreads * kPerThread + 1));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConcurrency, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store
