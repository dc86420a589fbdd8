// MetricsFlusher: a thread that writes a process's Metrics deltas to the store every interval
// (default 10s) and once more when stopped, so that /metrics in mailreport serve covers
// mailreport-lmtp and mailreport-milter too. A failed write keeps the deltas for the next one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/metrics.hpp"

namespace mailreport::store {

class MetricsFlusher {
 public:
  MetricsFlusher(Store& store, Metrics& metrics, Logger& log,
                 std::chrono::milliseconds interval = std::chrono::seconds(10),
                 std::string node = metrics_node_name());
  ~MetricsFlusher();  // stops and flushes
  MetricsFlusher(const MetricsFlusher&) = delete;
  MetricsFlusher& operator=(const MetricsFlusher&) = delete;

  // Writes what changed now (also called by the thread). Thread-safe.
  Status flush();
  void stop();

 private:
  void run();
  Store& store_;
  Metrics& metrics_;
  Logger& log_;
  std::chrono::milliseconds interval_;
  std::string node_;
  std::mutex mu_;
  std::mutex flush_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mailreport::store
