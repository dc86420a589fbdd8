// PLACEHOLDER (replaced by the store work of issue 5): the aggregate-report, TLS count and
// suppression parts of SqliteStore, so that the tree builds while they are written.
#include "sqlite_store_impl.hpp"

namespace mailreport::store::sqlite {
namespace {
Error todo() {
  return Error{ErrorCode::Unsupported, "not implemented yet"};
}
}  // namespace

Result<OutboxEntry> SqliteStore::find_outbox_by_message_id(std::string_view) {
  return todo();
}
Result<std::optional<std::int64_t>> SqliteStore::aggregate_watermark(std::string_view) {
  return todo();
}
Status SqliteStore::for_each_unreported_evaluation(
    std::int64_t, std::string_view, const std::function<bool(const EvaluationRow&)>&) {
  return todo();
}
Status SqliteStore::for_each_unreported_tls(std::int64_t, std::string_view,
                                            const std::function<bool(const TlsPolicyCount&)>&) {
  return todo();
}
Result<std::vector<std::int64_t>> SqliteStore::commit_aggregate_batch(const AggregateBatch&) {
  return todo();
}
Result<AggregateReport> SqliteStore::get_aggregate_report(std::int64_t) {
  return todo();
}
Result<std::vector<AggregateReport>> SqliteStore::list_aggregate_reports(
    const AggregateReportFilter&) {
  return todo();
}
Status SqliteStore::record_tls_results(std::span<const report::TlsrptDatagram>, std::int64_t) {
  return todo();
}
Status SqliteStore::record_tls_rejected(std::string_view, std::string_view, std::int64_t) {
  return todo();
}
Result<std::vector<TlsPolicyCount>> SqliteStore::list_tls_counts(std::int64_t, std::string_view) {
  return todo();
}
Result<BounceOutcome> SqliteStore::record_report_bounce(std::string_view, std::string_view,
                                                        std::int64_t, unsigned) {
  return todo();
}
Result<bool> SqliteStore::is_suppressed(std::string_view) {
  return todo();
}
Status SqliteStore::add_suppression(std::string_view, std::string_view, std::int64_t) {
  return todo();
}
Status SqliteStore::remove_suppression(std::string_view) {
  return todo();
}
Result<std::vector<Suppression>> SqliteStore::list_suppressions() {
  return todo();
}

}  // namespace mailreport::store::sqlite
