// Helpers shared by the data commands (import, list, show, export, reparse, purge): opening
// the configured store, the report type and date arguments, date formatting, JSON output.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mailreport/config/config.hpp"
#include "mailreport/report/extract.hpp"
#include "mailreport/report/model.hpp"
#include "mailreport/store/open_store.hpp"
#include "mailreport/store/store.hpp"

namespace mailreport::cli {

using store::StoreAccess;

// Opens the configured store (store::open_configured_store): the read commands ReadOnly
// (SQLite read-only, NotFound when there is no store yet; PostgreSQL without migrations).
Result<std::unique_ptr<store::Store>> open_configured_store(const config::Config& cfg,
                                                            StoreAccess access);

report::ExtractLimits extract_limits(const config::Config& cfg);

// "dmarc", "tls", "arf", "dsn" (or the full names "dmarc-aggregate", "tls-aggregate").
std::optional<report::ReportType> parse_report_type(std::string_view name);
// The short name used on the command line.
const char* short_name(report::ReportType type) noexcept;

// "YYYY-MM-DD" (UTC midnight) or epoch seconds.
Result<std::int64_t> parse_date_arg(std::string_view text);

// UTC renderings of epoch seconds.
std::string format_date(std::int64_t t);     // 2024-01-31
std::string format_minute(std::int64_t t);   // 2024-01-31 23:59
std::string format_iso8601(std::int64_t t);  // 2024-01-31T23:59:59Z

// JSON text with invalid UTF-8 replaced (reports carry text as the reporter sent it).
std::string dump_json(const nlohmann::json& j, int indent = -1);

// A report as `show --json` and `export --format json` print it: report::to_json with the
// store's metadata added (id, raw_message_id, received_at).
nlohmann::json stored_report_json(const store::StoredReport& r);

// Prints a Result error for a command ("mailreport CMD: message") and returns the exit code.
int fail(std::string_view command, const Error& e);

}  // namespace mailreport::cli
