// The milter's background writer: the SMTP dialogue never waits on the store (design.md). A
// session hands each evaluation to an EvaluationQueue, which never blocks: the
// BackgroundWriter keeps at most `capacity` evaluations and one thread writes them to an
// EvaluationSink (the store) in batches of at most `batch_size`, at the latest
// `flush_interval` after they arrived.
//
// - Overflow: when the queue is full the new evaluation is dropped, counted, and logged at most
//   once per `overflow_log_interval` (with the number dropped since the last line).
// - A batch the sink refuses is retried (after flush_interval, doubling up to 30 s) up to
//   `max_attempts` times, then dropped and counted; meanwhile new evaluations queue up to the
//   capacity, and overflow as above.
// - stop() (SIGTERM) writes everything still queued, one attempt per batch, then joins.
//
// Not done: spilling to disk when the store is down for long (the queue is in memory).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <thread>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::store {
class Store;
}

namespace mailreport::milter {

// What a session sees: a queue that never blocks.
class EvaluationQueue {
 public:
  virtual ~EvaluationQueue() = default;
  // false when the evaluation was dropped (queue full, or the writer has stopped).
  virtual bool push(auth::Evaluation evaluation) = 0;
};

// Where batches go.
class EvaluationSink {
 public:
  virtual ~EvaluationSink() = default;
  // All or nothing.
  virtual Status write(std::span<const auth::Evaluation> batch) = 0;
};

// The sink for the real daemon: Store::record_evaluations (one transaction per batch).
class StoreSink final : public EvaluationSink {
 public:
  explicit StoreSink(store::Store& store) : store_(store) {}
  Status write(std::span<const auth::Evaluation> batch) override;

 private:
  store::Store& store_;
};

struct WriterOptions {
  std::size_t capacity = 10000;                    // milter.queue-size
  std::size_t batch_size = 500;                    // milter.batch-size
  std::chrono::milliseconds flush_interval{1000};  // milter.flush-interval
  std::chrono::milliseconds overflow_log_interval{60000};
  std::chrono::milliseconds max_retry_delay{30000};
  unsigned max_attempts = 5;  // per batch, while running
};

struct WriterStats {
  std::uint64_t accepted = 0;  // pushed and queued
  std::uint64_t dropped = 0;   // refused by push(): queue full or stopped
  std::uint64_t written = 0;   // evaluations the sink took
  std::uint64_t lost = 0;      // evaluations in batches the sink refused for good
  std::uint64_t batches = 0;   // successful sink writes
  std::size_t queued = 0;      // waiting now (not counting a batch being written)
};

class BackgroundWriter final : public EvaluationQueue {
 public:
  // `sink` and `log` must outlive the writer. The thread starts at once.
  BackgroundWriter(EvaluationSink& sink, Logger& log, WriterOptions options);
  ~BackgroundWriter() override;  // stop()
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  bool push(auth::Evaluation evaluation) override;

  // Writes everything queued (one attempt per batch), then ends the thread. Idempotent;
  // push() refuses evaluations afterwards.
  void stop();

  // Blocks until everything pushed so far has been handed to the sink (written or lost), or
  // `timeout` passes; true when it was. For tests and for an orderly reload.
  bool drain(std::chrono::milliseconds timeout);

  WriterStats stats() const;

 private:
  void run();
  // Writes one batch; false when the sink refused it.
  bool write(std::span<const auth::Evaluation> batch);

  EvaluationSink& sink_;
  Logger& log_;
  const WriterOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;     // the writer thread: work, or stop
  std::condition_variable drained_;  // drain(): in_flight_ and queue_ empty
  std::deque<auth::Evaluation> queue_;
  std::size_t in_flight_ = 0;  // evaluations of the batch being written
  bool stopping_ = false;
  WriterStats stats_;
  std::uint64_t dropped_unlogged_ = 0;
  std::chrono::steady_clock::time_point last_overflow_log_{};
  bool overflow_logged_ = false;
  std::thread thread_;  // last: starts after everything above is constructed
};

}  // namespace mailreport::milter
