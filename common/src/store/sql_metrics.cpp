// SqlStore: counters and gauges of every process, for /metrics (issue 6). PLACEHOLDER.
#include <string>

#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {
Error not_yet(const char* what) {
  return make_error(ErrorCode::Unsupported, std::string(what) + ": not implemented yet");
}
}  // namespace

Status SqlStore::add_metrics(std::span<const MetricValue>, std::int64_t) {
  return not_yet("add_metrics");
}
Result<std::vector<MetricValue>> SqlStore::list_metrics() { return not_yet("list_metrics"); }

}  // namespace mailreport::store::sql
