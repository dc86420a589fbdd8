// The background writer: a bounded in-memory queue of evaluations drained in batches by one
// thread into the store (see writer.hpp).
#include "mailreport/milter/writer.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <string>
#include <vector>

#include "mailreport/store/store.hpp"
#include "mailreport/util/metrics.hpp"

namespace mailreport::milter {

namespace {

// This process's counters (docs/metrics.md), looked up once; increments are relaxed atomics.
struct Counters {
  std::atomic<std::uint64_t>& recorded;
  std::atomic<std::uint64_t>& reports_queued;
  std::atomic<std::uint64_t>& reports_limited;
  std::atomic<std::uint64_t>& overflow;
};

Counters& counters() {
  static Counters c{
      Metrics::process().counter("mailreport_evaluations_recorded_total"),
      Metrics::process().counter("mailreport_failure_reports_queued_total"),
      Metrics::process().counter("mailreport_failure_reports_rate_limited_total"),
      Metrics::process().counter("mailreport_milter_queue_overflow_total"),
  };
  return c;
}

constexpr std::string_view kQueueDepth = "mailreport_milter_queue_depth";

}  // namespace

Status StoreSink::write(std::span<const auth::Evaluation> batch) {
  auto stats = store_.record_evaluations_counted(batch);
  if (!stats) return std::move(stats).error();
  Counters& c = counters();
  c.recorded.fetch_add(stats->rows, std::memory_order_relaxed);
  c.reports_queued.fetch_add(stats->reports_queued, std::memory_order_relaxed);
  c.reports_limited.fetch_add(stats->reports_limited, std::memory_order_relaxed);
  return {};
}

BackgroundWriter::BackgroundWriter(EvaluationSink& sink, Logger& log, WriterOptions options)
    : sink_(sink), log_(log), options_([&] {
        options.capacity = std::max<std::size_t>(options.capacity, 1);
        options.batch_size = std::clamp<std::size_t>(options.batch_size, 1, options.capacity);
        options.max_attempts = std::max(options.max_attempts, 1u);
        return options;
      }()) {
  thread_ = std::thread([this] { run(); });
}

BackgroundWriter::~BackgroundWriter() {
  stop();
}

bool BackgroundWriter::push(auth::Evaluation evaluation) {
  std::unique_lock lock(mu_);
  if (stopping_ || queue_.size() >= options_.capacity) {
    ++stats_.dropped;
    ++dropped_unlogged_;
    counters().overflow.fetch_add(1, std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (!overflow_logged_ || now - last_overflow_log_ >= options_.overflow_log_interval) {
      overflow_logged_ = true;
      last_overflow_log_ = now;
      const std::uint64_t n = std::exchange(dropped_unlogged_, 0);
      const bool stopping = stopping_;
      lock.unlock();
      log_.warning(
          "writer",
          stopping ? "stopped: dropped " + std::to_string(n) +
                         " evaluation(s) that arrived during shutdown"
                   : "queue full (milter.queue-size = " + std::to_string(options_.capacity) +
                         ", the store is behind): dropped " + std::to_string(n) + " evaluation(s)");
    }
    return false;
  }
  queue_.push_back(std::move(evaluation));
  ++stats_.accepted;
  // Wake the thread when its flush timer should start, or when a batch is full.
  const bool wake = queue_.size() == 1 || queue_.size() == options_.batch_size;
  lock.unlock();
  if (wake) wake_.notify_one();
  return true;
}

void BackgroundWriter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  if (dropped_unlogged_ > 0) {
    log_.warning("writer", "dropped " + std::to_string(std::exchange(dropped_unlogged_, 0)) +
                               " evaluation(s) (queue full or shutting down)");
  }
}

bool BackgroundWriter::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  wake_.notify_all();
  return drained_.wait_for(lock, timeout, [&] { return queue_.empty() && in_flight_ == 0; });
}

WriterStats BackgroundWriter::stats() const {
  std::lock_guard lock(mu_);
  WriterStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void BackgroundWriter::run() {
  // The SMTP dialogue comes first: a batch written while sessions wait for CPU would add its
  // whole duration to their latency. Five nice levels below the process for this thread only
  // (on Linux, setpriority on a thread id affects that thread) still leave it about a third of
  // a busy session thread's CPU share, many times what the store needs per message, so the
  // queue keeps draining under load.
  errno = 0;
  const int base = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  if (errno == 0) {
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), std::min(base + 5, 19));
  }
  std::unique_lock lock(mu_);
  std::vector<auth::Evaluation> batch;
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and nothing left
    // Wait for a full batch, or flush what there is after flush_interval.
    if (!stopping_ && queue_.size() < options_.batch_size) {
      wake_.wait_for(lock, options_.flush_interval,
                     [&] { return stopping_ || queue_.size() >= options_.batch_size; });
    }
    // Take the batch in O(1) when it is the whole queue: sessions wait on mu_ in push(), and
    // this thread runs at a lower priority, so it does the moving after unlocking.
    std::deque<auth::Evaluation> taken;
    if (queue_.size() <= options_.batch_size) {
      taken.swap(queue_);
    } else {
      const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(options_.batch_size);
      taken.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
      queue_.erase(queue_.begin(), end);
    }
    const std::size_t n = taken.size();
    in_flight_ = n;
    const std::size_t left = queue_.size();
    lock.unlock();
    // Sampled here, off the sessions' path: what waits behind the batch being written.
    Metrics::process().set_gauge(kQueueDepth, {}, static_cast<std::int64_t>(left));
    batch.assign(std::make_move_iterator(taken.begin()), std::make_move_iterator(taken.end()));
    taken.clear();
    lock.lock();

    auto delay = options_.flush_interval;
    bool written = false;
    for (unsigned attempt = 1;; ++attempt) {
      const bool last = stopping_ || attempt >= options_.max_attempts;
      lock.unlock();
      written = write(batch);
      lock.lock();
      if (written || last) break;
      // Retry later; a stop() meanwhile makes the next attempt the last.
      wake_.wait_for(lock, delay, [&] { return stopping_; });
      delay = std::min(delay * 2, options_.max_retry_delay);
    }
    if (written) {
      stats_.written += n;
      ++stats_.batches;
    } else {
      stats_.lost += n;
      lock.unlock();
      log_.error("writer", "gave up on " + std::to_string(n) +
                               " evaluation(s): the store refused them (see above)");
      lock.lock();
    }
    lock.unlock();
    batch.clear();
    lock.lock();
    in_flight_ = 0;
    if (queue_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

bool BackgroundWriter::write(std::span<const auth::Evaluation> batch) {
  Status st = sink_.write(batch);
  if (!st) {
    log_.error("writer", "writing " + std::to_string(batch.size()) +
                             " evaluation(s) to the store failed: " + st.error().describe());
    return false;
  }
  return true;
}

}  // namespace mailreport::milter
