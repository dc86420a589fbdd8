// RFC 5322 §3.3 date-times ("Thu, 8 Mar 2005 14:00:00 -0500") as found in Date headers,
// ARF Arrival-Date (RFC 5965 §3.2) and DSN Arrival-Date / Last-Attempt-Date /
// Will-Retry-Until (RFC 3464 §2.2.5, §2.3.7). Parsing is GMime's
// (g_mime_utils_header_decode_date), which also takes the obsolete forms of RFC 5322 §4.3:
// alphabetic zones ("EDT", "GMT"), a missing day-of-week, two-digit years, trailing comments.
// Not done: zone names GMime does not know (e.g. "JST") are taken as UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mailreport::mime {

// UTC epoch seconds, or nullopt when the text is not a date.
std::optional<std::int64_t> parse_date(std::string_view text);

}  // namespace mailreport::mime
