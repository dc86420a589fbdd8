// Private helpers of the config module: octal file modes ("0660").
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport::config::detail {

// "0660" or "660": permission bits only (at most 0777).
Result<mode_t> parse_mode(std::string_view text);

}  // namespace mailreport::config::detail
