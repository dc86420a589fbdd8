// SqlStore: the dashboard's and JSON API's queries (issue 6). PLACEHOLDER: being written.
#include <string>

#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {
Error not_yet(const char* what) {
  return make_error(ErrorCode::Unsupported, std::string(what) + ": not implemented yet");
}
}  // namespace

Result<ReportPage> SqlStore::query_reports(const ReportQuery&) { return not_yet("query_reports"); }
Result<std::vector<DmarcDayPoint>> SqlStore::dmarc_daily(const SeriesQuery&) {
  return not_yet("dmarc_daily");
}
Result<std::vector<SourceStat>> SqlStore::top_failing_sources(const SeriesQuery&, std::size_t) {
  return not_yet("top_failing_sources");
}
Result<bool> SqlStore::dmarc_source_known(std::string_view, std::string_view, std::int64_t) {
  return not_yet("dmarc_source_known");
}
Result<std::vector<TlsDayPoint>> SqlStore::tls_daily(const SeriesQuery&) {
  return not_yet("tls_daily");
}
Result<std::vector<TlsFailureStat>> SqlStore::tls_failures_by_type(const SeriesQuery&) {
  return not_yet("tls_failures_by_type");
}
Result<std::vector<OutboxStat>> SqlStore::outbox_stats() { return not_yet("outbox_stats"); }
Result<std::vector<EvaluationStat>> SqlStore::evaluation_summary(const SeriesQuery&) {
  return not_yet("evaluation_summary");
}

}  // namespace mailreport::store::sql
