// Metrics: the in-memory registry of one process's counters and gauges (util/metrics.hpp).
//
// A counter is an atomic the hot paths increment with relaxed order through a reference they
// looked up once; the registry's mutex is taken only to look a series up, to set a gauge and
// to take the deltas (the flusher, every few seconds). A counter remembers what it has handed
// out (`flushed`): the delta is the difference, so no increment is lost between a load and
// the next take, and a failed flush gives its deltas back with restore().
//
// Not done: histograms and summaries (nothing in mailreport needs them yet).
#include "mailreport/util/metrics.hpp"

#include <unistd.h>

#include <array>
#include <climits>

namespace mailreport {

std::atomic<std::uint64_t>& Metrics::counter(std::string_view name, std::string_view labels) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(std::string(name), std::string(labels));
  auto it = counters_.find(key);
  if (it == counters_.end()) {
    it = counters_.emplace(std::move(key), std::make_unique<Counter>()).first;
  }
  return it->second->value;
}

std::string Metrics::label(std::string_view key, std::string_view value) {
  std::string out(key);
  out += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

void Metrics::set_gauge(std::string_view name, std::string_view labels, std::int64_t value) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = gauges_.try_emplace(std::make_pair(std::string(name), std::string(labels)));
  if (inserted || it->second.value != value) {
    it->second.value = value;
    it->second.dirty = true;
  }
}

std::vector<Metrics::Delta> Metrics::take_deltas() {
  std::lock_guard lock(mu_);
  std::vector<Delta> out;
  for (auto& [key, c] : counters_) {
    std::uint64_t now = c->value.load(std::memory_order_relaxed);
    if (now == c->flushed) continue;
    std::uint64_t delta = now - c->flushed;  // unsigned: right across a wrap too
    c->flushed = now;
    out.push_back(Delta{key.first, key.second, false,
                        static_cast<std::int64_t>(delta > static_cast<std::uint64_t>(INT64_MAX)
                                                      ? static_cast<std::uint64_t>(INT64_MAX)
                                                      : delta)});
  }
  for (auto& [key, g] : gauges_) {
    if (!g.dirty) continue;
    g.dirty = false;
    out.push_back(Delta{key.first, key.second, true, g.value});
  }
  return out;
}

void Metrics::restore(const std::vector<Delta>& deltas) {
  std::lock_guard lock(mu_);
  for (const Delta& d : deltas) {
    auto key = std::make_pair(d.name, d.labels);
    if (d.gauge) {
      // The gauge's current value is sent next time (a newer set already marked it dirty).
      auto it = gauges_.find(key);
      if (it != gauges_.end()) it->second.dirty = true;
      continue;
    }
    auto it = counters_.find(key);
    if (it != counters_.end() && d.value > 0) {
      it->second->flushed -= static_cast<std::uint64_t>(d.value);
    }
  }
}

Metrics& Metrics::process() {
  static Metrics registry;
  return registry;
}

std::string metrics_node_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  return std::string(buf.data());
}

}  // namespace mailreport
