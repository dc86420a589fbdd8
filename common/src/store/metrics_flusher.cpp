// MetricsFlusher: writes a process's Metrics deltas to the store every interval and once more
// when stopped (store/metrics_flusher.hpp). A failed write gives the deltas back to the
// registry, so the next write carries them; nothing counted is lost while the store is down.
//
// Not done: a process killed with SIGKILL loses what it counted since the last write.
#include "mailreport/store/metrics_flusher.hpp"

#include <ctime>
#include <utility>
#include <vector>

namespace mailreport::store {

MetricsFlusher::MetricsFlusher(Store& store, Metrics& metrics, Logger& log,
                               std::chrono::milliseconds interval, std::string node)
    : store_(store),
      metrics_(metrics),
      log_(log),
      interval_(interval.count() > 0 ? interval : std::chrono::seconds(10)),
      node_(std::move(node)) {
  thread_ = std::thread([this] { run(); });
}

MetricsFlusher::~MetricsFlusher() {
  stop();
}

Status MetricsFlusher::flush() {
  std::lock_guard lock(flush_mu_);
  std::vector<Metrics::Delta> deltas = metrics_.take_deltas();
  if (deltas.empty()) return {};
  std::vector<MetricValue> values;
  values.reserve(deltas.size());
  for (const auto& d : deltas) {
    values.push_back(MetricValue{node_, d.name, d.labels, d.gauge, d.value, 0});
  }
  Status st = store_.add_metrics(values, static_cast<std::int64_t>(std::time(nullptr)));
  if (!st) {
    metrics_.restore(deltas);
    log_.warning("metrics", "writing metrics to the store failed (kept for the next write): " +
                                st.error().message);
  }
  return st;
}

void MetricsFlusher::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  (void)flush();  // the last counts; a failure is logged by flush()
}

void MetricsFlusher::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (cv_.wait_for(lock, interval_, [this] { return stop_; })) break;
    lock.unlock();
    (void)flush();  // a failure is logged and retried next time
    lock.lock();
  }
}

}  // namespace mailreport::store
