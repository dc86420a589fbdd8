// The query parameters of the JSON API and the chart routes (request_args.hpp).
#include "web/request_args.hpp"

#include <charconv>
#include <string_view>

#include "mailreport/util/day.hpp"

namespace mailreport::web {

namespace {

template <class T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::int64_t> parse_count(std::string_view s) {
  auto n = parse_number<std::int64_t>(s);
  if (!n || *n < 0) return std::nullopt;
  return n;
}

std::optional<BadParam> time_arg(const Request& r, const char* name,
                                 std::optional<std::int64_t>& out) {
  const std::string v = r.arg(name);
  if (v.empty()) return std::nullopt;
  auto t = parse_day_or_epoch(v);
  if (!t) {
    return BadParam{std::string(name) + ": expected YYYY-MM-DD or epoch seconds, got \"" + v +
                    "\""};
  }
  out = *t;
  return std::nullopt;
}

std::optional<BadParam> limit_arg(const Request& r, std::size_t& out) {
  const std::string v = r.arg("limit");
  out = kDefaultLimit;
  if (v.empty()) return std::nullopt;
  auto n = parse_number<std::size_t>(v);
  if (!n || *n == 0 || *n > kMaxLimit) {
    return BadParam{"limit: expected a number from 1 to " + std::to_string(kMaxLimit) + ", got \"" +
                    v + "\""};
  }
  out = *n;
  return std::nullopt;
}

std::optional<BadParam> count_arg(const Request& r, const char* name, std::int64_t& out) {
  const std::string v = r.arg(name);
  if (v.empty()) return std::nullopt;
  auto n = parse_count(v);
  if (!n) {
    return BadParam{std::string(name) + ": expected a non-negative number, got \"" + v + "\""};
  }
  out = *n;
  return std::nullopt;
}

std::optional<BadParam> series_args(const Request& r, std::int64_t now, bool with_source,
                                    store::SeriesQuery& q) {
  q.domain = r.arg("domain");
  if (with_source) q.source_ip = r.arg("source_ip");
  std::optional<std::int64_t> from;
  std::optional<std::int64_t> to;
  if (auto bad = time_arg(r, "from", from)) return bad;
  if (auto bad = time_arg(r, "to", to)) return bad;
  q.from = from.value_or(now - kDefaultPeriod);
  q.to = to.value_or(0);
  return std::nullopt;
}

}  // namespace mailreport::web
