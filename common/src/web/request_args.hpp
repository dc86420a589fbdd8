// The JSON API's and the chart routes' query parameters (docs/api.md): one reading of each, so
// that /api/v1/... and /api/v1/charts/... take the same filters with the same errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mailreport/store/store.hpp"
#include "mailreport/web/http_server.hpp"

namespace mailreport::web {

inline constexpr std::int64_t kDefaultPeriod = 30 * 86400;  // `from` when absent: now - 30 days
inline constexpr std::size_t kDefaultLimit = 50;
inline constexpr std::size_t kMaxLimit = 500;

// A bad parameter: the message names it ("from: expected YYYY-MM-DD or epoch seconds, ...").
struct BadParam {
  std::string message;
};

// A whole non-negative number ("42"), nullopt for anything else (signs, spaces, "").
std::optional<std::int64_t> parse_count(std::string_view s);

// `name` as YYYY-MM-DD (UTC midnight) or epoch seconds; absent leaves `out` alone.
std::optional<BadParam> time_arg(const Request& r, const char* name,
                                 std::optional<std::int64_t>& out);
// `limit`: 1..kMaxLimit, default kDefaultLimit.
std::optional<BadParam> limit_arg(const Request& r, std::size_t& out);
// A non-negative number; absent leaves `out` alone.
std::optional<BadParam> count_arg(const Request& r, const char* name, std::int64_t& out);
// domain, source_ip (when `with_source`), from (default now - kDefaultPeriod), to (default 0:
// none).
std::optional<BadParam> series_args(const Request& r, std::int64_t now, bool with_source,
                                    store::SeriesQuery& q);

}  // namespace mailreport::web
