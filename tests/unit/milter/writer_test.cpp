// The background writer: batches, the flush interval, overflow counted (never a stall), retries
// of a refusing store, and the SIGTERM-style flush of stop().
#include "mailreport/milter/writer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace mailreport::milter {
namespace {

using namespace std::chrono_literals;

auth::Evaluation evaluation(int n) {
  auth::Evaluation e;
  e.time = 1700000000 + n;
  e.source_ip = "192.0.2." + std::to_string(n % 250);
  e.message_id = "<" + std::to_string(n) + "@example.com>";
  return e;
}

// Records every batch; can be told to block (a slow store) or to refuse (a broken one).
class FakeSink final : public EvaluationSink {
 public:
  Status write(std::span<const auth::Evaluation> batch) override {
    std::unique_lock lock(mu_);
    ++calls;
    gate_.wait(lock, [&] { return open_; });
    if (refuse > 0) {
      --refuse;
      return make_error(ErrorCode::Store, "database is locked");
    }
    std::vector<std::string> ids;
    for (const auto& e : batch) ids.push_back(e.message_id);
    batches.push_back(std::move(ids));
    return {};
  }
  void close_gate() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    gate_.notify_all();
  }
  std::size_t total() {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& b : batches) n += b.size();
    return n;
  }

  std::mutex mu_;
  std::condition_variable gate_;
  bool open_ = true;
  std::atomic<int> calls = 0;
  int refuse = 0;  // refuse this many writes
  std::vector<std::vector<std::string>> batches;
};

class RecordingLog final : public Logger {
 public:
  void log(LogLevel level, std::string_view, std::string_view message) override {
    std::lock_guard lock(mu);
    lines.emplace_back(level, std::string(message));
  }
  std::size_t count(LogLevel level, std::string_view needle) {
    std::lock_guard lock(mu);
    std::size_t n = 0;
    for (const auto& [l, m] : lines) n += (l == level && m.find(needle) != std::string::npos);
    return n;
  }
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> lines;
};

TEST(BackgroundWriter, WritesInBatchesInOrder) {
  FakeSink sink;
  RecordingLog log;
  sink.close_gate();  // hold the first write so the rest queue up
  WriterOptions o;
  o.capacity = 100;
  o.batch_size = 4;
  o.flush_interval = 10ms;
  BackgroundWriter w(sink, log, o);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(w.push(evaluation(i)));
  sink.open_gate();
  ASSERT_TRUE(w.drain(5s));
  ASSERT_EQ(sink.total(), 10u);
  std::vector<std::string> all;
  for (const auto& b : sink.batches) {
    EXPECT_LE(b.size(), 4u);
    all.insert(all.end(), b.begin(), b.end());
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(all[i], evaluation(i).message_id);
  const WriterStats s = w.stats();
  EXPECT_EQ(s.accepted, 10u);
  EXPECT_EQ(s.written, 10u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.queued, 0u);
}

TEST(BackgroundWriter, FlushesAPartialBatchAfterTheInterval) {
  FakeSink sink;
  RecordingLog log;
  WriterOptions o;
  o.batch_size = 500;
  o.flush_interval = 50ms;
  BackgroundWriter w(sink, log, o);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(w.push(evaluation(1)));
  ASSERT_TRUE(w.drain(5s));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 40ms);  // it waited for more to come
  EXPECT_LT(waited, 2s);
  ASSERT_EQ(sink.batches.size(), 1u);
  EXPECT_EQ(sink.batches[0].size(), 1u);
}

TEST(BackgroundWriter, OverflowIsCountedAndLoggedNeverAStall) {
  FakeSink sink;
  RecordingLog log;
  sink.close_gate();  // the store hangs
  WriterOptions o;
  o.capacity = 5;
  o.batch_size = 2;
  o.flush_interval = 1ms;
  o.overflow_log_interval = 1h;
  BackgroundWriter w(sink, log, o);
  // The first batch is taken by the thread (and hangs in the sink): wait for that.
  ASSERT_TRUE(w.push(evaluation(0)));
  ASSERT_TRUE(w.push(evaluation(1)));
  for (int i = 0; i < 500 && w.stats().queued != 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(w.stats().queued, 0u);

  const auto start = std::chrono::steady_clock::now();
  int accepted = 0;
  for (int i = 2; i < 102; ++i) accepted += w.push(evaluation(i)) ? 1 : 0;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // never blocks
  EXPECT_EQ(accepted, 5);
  WriterStats s = w.stats();
  EXPECT_EQ(s.dropped, 95u);
  EXPECT_EQ(s.queued, 5u);
  // One log line for the burst (rate-limited), not 95.
  EXPECT_EQ(log.count(LogLevel::Warning, "queue full"), 1u);
  EXPECT_EQ(log.count(LogLevel::Warning, "milter.queue-size = 5"), 1u);

  sink.open_gate();
  ASSERT_TRUE(w.drain(5s));
  EXPECT_EQ(sink.total(), 7u);  // 2 in flight + 5 queued
  s = w.stats();
  EXPECT_EQ(s.written, 7u);
  EXPECT_EQ(s.dropped, 95u);
}

TEST(BackgroundWriter, OverflowLogIsRateLimitedNotSilenced) {
  FakeSink sink;
  RecordingLog log;
  sink.close_gate();
  WriterOptions o;
  o.capacity = 1;
  o.batch_size = 1;
  o.flush_interval = 1ms;
  o.overflow_log_interval = 0ms;  // every drop may log
  BackgroundWriter w(sink, log, o);
  ASSERT_TRUE(w.push(evaluation(0)));
  for (int i = 0; i < 500 && w.stats().queued != 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(w.push(evaluation(1)));
  EXPECT_FALSE(w.push(evaluation(2)));
  EXPECT_FALSE(w.push(evaluation(3)));
  EXPECT_EQ(log.count(LogLevel::Warning, "dropped 1 evaluation"), 2u);
  sink.open_gate();
}

TEST(BackgroundWriter, StopFlushesEverythingQueued) {
  FakeSink sink;
  RecordingLog log;
  WriterOptions o;
  o.capacity = 10000;
  o.batch_size = 300;
  o.flush_interval = 1h;  // only a full batch or stop() writes
  BackgroundWriter w(sink, log, o);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(w.push(evaluation(i)));
  w.stop();  // what SIGTERM does
  EXPECT_EQ(sink.total(), 1000u);
  const WriterStats s = w.stats();
  EXPECT_EQ(s.written, 1000u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.batches, 4u);  // 300 + 300 + 300 + 100
  // Refused after stop, and counted.
  EXPECT_FALSE(w.push(evaluation(5000)));
  EXPECT_EQ(w.stats().dropped, 1u);
  w.stop();  // idempotent
}

TEST(BackgroundWriter, RetriesARefusedBatch) {
  FakeSink sink;
  RecordingLog log;
  sink.refuse = 2;
  WriterOptions o;
  o.batch_size = 10;
  o.flush_interval = 1ms;
  o.max_attempts = 5;
  BackgroundWriter w(sink, log, o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(w.push(evaluation(i)));
  ASSERT_TRUE(w.drain(5s));
  EXPECT_EQ(sink.total(), 3u);
  EXPECT_EQ(sink.calls, 3);
  EXPECT_EQ(w.stats().written, 3u);
  EXPECT_EQ(w.stats().lost, 0u);
  EXPECT_EQ(log.count(LogLevel::Error, "database is locked"), 2u);
}

TEST(BackgroundWriter, GivesUpOnABatchTheStoreKeepsRefusing) {
  FakeSink sink;
  RecordingLog log;
  sink.refuse = 1000;
  WriterOptions o;
  o.batch_size = 10;
  o.flush_interval = 1ms;
  o.max_attempts = 3;
  BackgroundWriter w(sink, log, o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(w.push(evaluation(i)));
  ASSERT_TRUE(w.drain(5s));
  EXPECT_EQ(sink.calls, 3);
  const WriterStats s = w.stats();
  EXPECT_EQ(s.lost, 4u);
  EXPECT_EQ(s.written, 0u);
  EXPECT_EQ(log.count(LogLevel::Error, "gave up on 4 evaluation(s)"), 1u);
  // The next batch gets its own chances.
  sink.refuse = 0;
  ASSERT_TRUE(w.push(evaluation(9)));
  ASSERT_TRUE(w.drain(5s));
  EXPECT_EQ(w.stats().written, 1u);
}

TEST(BackgroundWriter, StopDuringRetriesMakesOneLastAttempt) {
  FakeSink sink;
  RecordingLog log;
  sink.refuse = 1000;
  WriterOptions o;
  o.batch_size = 10;
  o.flush_interval = 1ms;
  o.max_attempts = 100;
  o.max_retry_delay = 1h;
  BackgroundWriter w(sink, log, o);
  ASSERT_TRUE(w.push(evaluation(1)));
  for (int i = 0; i < 2000 && sink.calls < 3; ++i) std::this_thread::sleep_for(1ms);
  const auto start = std::chrono::steady_clock::now();
  w.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not waiting out the backoff
  EXPECT_EQ(w.stats().lost, 1u);
}

}  // namespace
}  // namespace mailreport::milter
