// Metrics: the counters and gauges one process keeps in memory (lock-free increments on the
// hot paths: LMTP and milter sessions, reports received, evaluations recorded, reports sent),
// flushed as deltas to the store by store::MetricsFlusher so that mailreport serve's /metrics
// shows every process of every node (store::MetricValue).
//
// Names follow Prometheus conventions (snake_case, unit suffix, _total for counters); labels
// are given as the text between the braces, sorted by name: kind="dmarc-failure".
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailreport {

class Metrics {
 public:
  // A counter; the reference stays valid for the registry's life. Thread-safe.
  std::atomic<std::uint64_t>& counter(std::string_view name, std::string_view labels = {});
  // A counter with one label: counter(name, label(key, value)).
  std::atomic<std::uint64_t>& counter(std::string_view name, std::string_view key,
                                      std::string_view value) {
    return counter(name, label(key, value));
  }

  // One label as the text between the braces: key="value", the value escaped as Prometheus's
  // text format asks (backslash, double quote and line feed).
  static std::string label(std::string_view key, std::string_view value);
  // Sets a gauge (the latest value wins). Thread-safe.
  void set_gauge(std::string_view name, std::string_view labels, std::int64_t value);

  struct Delta {
    std::string name;
    std::string labels;
    bool gauge = false;
    std::int64_t value = 0;  // counters: the increase since the last take; gauges: the value
  };
  // What changed since the last call (counters with a zero increase and unchanged gauges left
  // out). A failed flush gives the deltas back with restore().
  std::vector<Delta> take_deltas();
  void restore(const std::vector<Delta>& deltas);

  // The process-wide registry of a daemon.
  static Metrics& process();

 private:
  struct Counter {
    std::atomic<std::uint64_t> value{0};
    std::uint64_t flushed = 0;
  };
  struct Gauge {
    std::int64_t value = 0;
    bool dirty = false;
  };
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Counter>, std::less<>> counters_;
  std::map<std::pair<std::string, std::string>, Gauge, std::less<>> gauges_;
};

// The host name this process reports its metrics under.
std::string metrics_node_name();

}  // namespace mailreport
