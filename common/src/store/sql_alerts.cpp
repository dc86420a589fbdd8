// SqlStore: the alert scanner's watermarks and the webhook queue (issue 6). PLACEHOLDER.
#include <string>

#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {
Error not_yet(const char* what) {
  return make_error(ErrorCode::Unsupported, std::string(what) + ": not implemented yet");
}
}  // namespace

Result<std::optional<std::int64_t>> SqlStore::alert_watermark(std::string_view) {
  return not_yet("alert_watermark");
}
Status SqlStore::commit_alerts(const AlertBatch&) { return not_yet("commit_alerts"); }
Result<std::vector<WebhookEvent>> SqlStore::claim_webhook_events(std::string_view, std::int64_t,
                                                                 std::size_t, std::int64_t) {
  return not_yet("claim_webhook_events");
}
Status SqlStore::webhook_delivered(std::span<const std::int64_t>) {
  return not_yet("webhook_delivered");
}
Status SqlStore::webhook_retry(std::span<const std::int64_t>, std::int64_t, std::string_view) {
  return not_yet("webhook_retry");
}
Result<std::uint64_t> SqlStore::discard_webhook_events(std::string_view, std::int64_t) {
  return not_yet("discard_webhook_events");
}
Result<std::vector<std::pair<std::string, std::uint64_t>>> SqlStore::webhook_queue_depths() {
  return not_yet("webhook_queue_depths");
}
Result<std::vector<WebhookEvent>> SqlStore::list_webhook_events(std::string_view) {
  return not_yet("list_webhook_events");
}

}  // namespace mailreport::store::sql
