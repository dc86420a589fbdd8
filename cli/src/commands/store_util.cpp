// Helpers shared by the data commands (see store_util.hpp).
#include "commands/store_util.hpp"

#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "mailreport/report/json.hpp"
#include "mailreport/util/day.hpp"

namespace mailreport::cli {

Result<std::unique_ptr<store::Store>> open_configured_store(const config::Config& cfg,
                                                            StoreAccess access) {
  return store::open_configured_store(cfg.store, access);
}

report::ExtractLimits extract_limits(const config::Config& cfg) {
  report::ExtractLimits limits;
  limits.max_decompressed_bytes = cfg.limits.decompressed_size;
  limits.max_compression_ratio = cfg.limits.compression_ratio;
  return limits;
}

std::optional<report::ReportType> parse_report_type(std::string_view name) {
  using report::ReportType;
  if (name == "dmarc" || name == "dmarc-aggregate") return ReportType::DmarcAggregate;
  if (name == "tls" || name == "tls-aggregate" || name == "tlsrpt") return ReportType::TlsAggregate;
  if (name == "arf") return ReportType::Arf;
  if (name == "dsn") return ReportType::Dsn;
  return std::nullopt;
}

const char* short_name(report::ReportType type) noexcept {
  switch (type) {
    case report::ReportType::DmarcAggregate: return "dmarc";
    case report::ReportType::TlsAggregate: return "tls";
    case report::ReportType::Arf: return "arf";
    case report::ReportType::Dsn: return "dsn";
  }
  return "?";
}

Result<std::int64_t> parse_date_arg(std::string_view text) {
  if (auto t = parse_day_or_epoch(text)) return *t;
  return make_error(ErrorCode::Invalid,
                    "date '" + std::string(text) + "': expected YYYY-MM-DD or epoch seconds");
}

namespace {
std::tm utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}
}  // namespace

std::string format_date(std::int64_t t) {
  char buf[64];
  std::tm tm = utc(t);
  return std::string(buf, std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm));
}

std::string format_minute(std::int64_t t) {
  char buf[64];
  std::tm tm = utc(t);
  return std::string(buf, std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm));
}

std::string format_iso8601(std::int64_t t) {
  char buf[64];
  std::tm tm = utc(t);
  return std::string(buf, std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm));
}

std::string dump_json(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json stored_report_json(const store::StoredReport& r) {
  nlohmann::json j = report::to_json(r.report);
  j["id"] = r.summary.id;
  j["raw_message_id"] = r.summary.message_id;
  j["received_at"] = r.summary.received_at;
  return j;
}

int fail(std::string_view command, const Error& e) {
  std::cerr << "mailreport " << command << ": " << e.message << "\n";
  switch (e.code) {
    case ErrorCode::Invalid: return kExitUsage;
    case ErrorCode::Unsupported: return kExitConfig;
    default: return kExitFailure;
  }
}

}  // namespace mailreport::cli
