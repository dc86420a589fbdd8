// parse_day_or_epoch (util/day.hpp), over std::chrono's calendar (C++20).
#include "mailreport/util/day.hpp"

#include <charconv>
#include <chrono>

namespace mailreport {

namespace {

template <class T>
bool whole_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

std::optional<std::int64_t> parse_day_or_epoch(std::string_view s) {
  if (s.size() == 10 && s[4] == '-' && s[7] == '-') {
    int y = 0;
    unsigned m = 0;
    unsigned d = 0;
    if (!whole_number(s.substr(0, 4), y) || !whole_number(s.substr(5, 2), m) ||
        !whole_number(s.substr(8, 2), d)) {
      return std::nullopt;
    }
    using namespace std::chrono;
    const year_month_day ymd{year{y}, month{m}, day{d}};
    if (!ymd.ok()) return std::nullopt;
    return static_cast<std::int64_t>(sys_days{ymd}.time_since_epoch().count()) * 86400;
  }
  std::int64_t v = 0;
  if (!whole_number(s, v) || v < 0) return std::nullopt;
  return v;
}

}  // namespace mailreport
