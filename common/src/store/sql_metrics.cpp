// SqlStore: counters and gauges of every process of every node, for mailreport serve's
// /metrics (issue 6; SQLite migration 6 / PostgreSQL migration 2, table metrics).
//
// A counter row holds the sum of the deltas its process flushed (store::MetricsFlusher); a
// gauge row holds the last value set. One upsert per value, all in one write transaction.
//
// Not done: forgetting the rows of a node that is gone (they stay, and their counters keep
// their last value, which Prometheus reads as a flat series).
#include <string>
#include <vector>

#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

Status SqlStore::add_metrics(std::span<const MetricValue> values, std::int64_t now) {
  if (values.empty()) return {};
  return in_write_tx<Status>([&](Connection& db) -> Status {
    for (const MetricValue& v : values) {
      // Counters add the delta to the stored total; gauges replace it. A name that changes
      // kind (a bug) takes the new kind and value.
      auto q = db.query(
          "INSERT INTO metrics (node, name, labels, gauge, value, updated_at)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (node, name, labels) DO UPDATE SET"
          " value = CASE WHEN ?4 = 0 AND metrics.gauge = 0 THEN metrics.value + ?5 ELSE ?5 END,"
          " gauge = ?4, updated_at = ?6");
      if (!q) return std::move(q).error();
      q->bind(1, v.node)
          .bind(2, v.name)
          .bind(3, v.labels)
          .bind(4, v.gauge ? 1 : 0)
          .bind(5, v.value)
          .bind(6, now);
      if (auto st = q->run(); !st) return st;
    }
    return {};
  });
}

Result<std::vector<MetricValue>> SqlStore::list_metrics() {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(
      "SELECT node, name, labels, gauge, value, updated_at FROM metrics"
      " ORDER BY name, labels, node");
  if (!q) return std::move(q).error();
  std::vector<MetricValue> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    MetricValue v;
    v.node = q->text(0);
    v.name = q->text(1);
    v.labels = q->text(2);
    v.gauge = q->i64(3) != 0;
    v.value = q->i64(4);
    v.updated_at = q->i64(5);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace mailreport::store::sql
