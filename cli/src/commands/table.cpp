// Plain-text tables for the listing commands; see table.hpp.
#include "commands/table.hpp"

#include <algorithm>
#include <iostream>

namespace mailreport::cli {

std::string clip(std::string s, std::size_t max) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // a multi-line error on one line
  }
  if (s.size() <= max) return s;
  return s.substr(0, max - 3) + "...";
}

void print_columns(const std::vector<std::string>& head, const std::vector<bool>& right,
                   const std::vector<std::vector<std::string>>& cells) {
  std::vector<std::size_t> width(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) width[i] = head[i].size();
  for (const auto& c : cells) {
    for (std::size_t i = 0; i < c.size(); ++i) width[i] = std::max(width[i], c[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& c) {
    std::string line;
    for (std::size_t i = 0; i < c.size(); ++i) {
      std::string pad(width[i] - std::min(width[i], c[i].size()), ' ');
      line += right[i] ? pad + c[i] : c[i] + pad;
      if (i + 1 < c.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  };
  print_row(head);
  for (const auto& c : cells) print_row(c);
}

}  // namespace mailreport::cli
