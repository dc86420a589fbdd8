// Plain-text tables for the listing commands (list, outbox): aligned columns, cells clipped
// to a width and kept on one line.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mailreport::cli {

// `s` on one line (control characters become spaces), cut to `max` characters with "...".
std::string clip(std::string s, std::size_t max);

// Prints the header and rows as aligned columns to stdout; `right` marks right-aligned ones.
void print_columns(const std::vector<std::string>& head, const std::vector<bool>& right,
                   const std::vector<std::vector<std::string>>& cells);

}  // namespace mailreport::cli
