// Private helpers of the config module: octal file modes ("0660") and durations with
// millisecond precision ("500ms").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport::config::detail {

// "0660" or "660": permission bits only (at most 0777).
Result<mode_t> parse_mode(std::string_view text);

// parse_duration with "ms" as well: "500ms", "1s", "5m", ... (a plain number is seconds).
// For the keys that need less than a second (webhook.<id>.throttle).
Result<std::chrono::milliseconds> parse_duration_ms(std::string_view text);

}  // namespace mailreport::config::detail
