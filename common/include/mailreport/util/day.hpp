// Dates given by people (CLI options, the JSON API's query parameters): a UTC calendar day or
// epoch seconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mailreport {

// "YYYY-MM-DD" (proleptic Gregorian; that day's UTC midnight; 2026-02-31 is refused) or
// non-negative epoch seconds ("1767225600"); nullopt for anything else.
std::optional<std::int64_t> parse_day_or_epoch(std::string_view text);

}  // namespace mailreport
