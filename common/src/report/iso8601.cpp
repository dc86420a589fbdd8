// ISO 8601 / RFC 3339 date-time parsing and formatting; see iso8601.hpp.
#include "report/iso8601.hpp"

#include <cctype>
#include <cstdio>

namespace mailreport::report::iso8601 {

// Howard Hinnant's civil-calendar algorithms (public domain), valid for any int64 year
// range we can meet.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

namespace {

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void skip() { ++i_; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  // Exactly n digits.
  std::optional<unsigned> digits(int n) {
    unsigned v = 0;
    for (int k = 0; k < n; ++k) {
      if (done() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) return std::nullopt;
      v = v * 10 + static_cast<unsigned>(s_[i_++] - '0');
    }
    return v;
  }
  void skip_digits() {
    while (!done() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

bool is_leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Parsed> parse(std::string_view text) {
  Cursor c(trim(text));
  // RFC 3339 §5.6: full-date = date-fullyear "-" date-month "-" date-mday
  auto year = c.digits(4);
  if (!year || !c.eat('-')) return std::nullopt;
  auto month = c.digits(2);
  if (!month || !c.eat('-')) return std::nullopt;
  auto day = c.digits(2);
  if (!day || *month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month)) {
    return std::nullopt;
  }
  Parsed out;
  std::int64_t seconds = days_from_civil(*year, *month, *day) * 86400;
  if (c.done()) {
    // A bare date: midnight, no zone given.
    out.epoch = seconds;
    out.had_zone = false;
    return out;
  }
  // RFC 3339 §5.6 allows "t" and (NOTE) a space in place of "T".
  if (!(c.eat('T') || c.eat('t') || c.eat(' '))) return std::nullopt;
  auto hour = c.digits(2);
  if (!hour || !c.eat(':')) return std::nullopt;
  auto minute = c.digits(2);
  if (!minute) return std::nullopt;
  unsigned second = 0;
  if (c.eat(':')) {
    auto s = c.digits(2);
    if (!s) return std::nullopt;
    second = *s;
  }
  if (*hour > 24 || *minute > 59 || second > 60) return std::nullopt;
  if (*hour == 24 && (*minute != 0 || second != 0)) return std::nullopt;
  if (second == 60) second = 59;  // RFC 3339 §5.7: leap second; epoch time has none.
  // time-secfrac = "." 1*DIGIT (dropped: the model keeps whole seconds)
  if (c.eat('.') || c.eat(',')) {
    if (!std::isdigit(static_cast<unsigned char>(c.peek()))) return std::nullopt;
    c.skip_digits();
  }
  seconds += static_cast<std::int64_t>(*hour) * 3600 + *minute * 60 + second;
  // time-offset = "Z" / time-numoffset
  if (c.eat('Z') || c.eat('z')) {
    out.had_zone = true;
  } else if (c.peek() == '+' || c.peek() == '-') {
    const bool minus = c.peek() == '-';
    c.skip();
    auto oh = c.digits(2);
    if (!oh) return std::nullopt;
    unsigned om = 0;
    if (c.eat(':')) {
      auto m = c.digits(2);
      if (!m) return std::nullopt;
      om = *m;
    } else if (!c.done()) {
      auto m = c.digits(2);
      if (!m) return std::nullopt;
      om = *m;
    }
    if (*oh > 23 || om > 59) return std::nullopt;
    const std::int64_t offset = static_cast<std::int64_t>(*oh) * 3600 + om * 60;
    // local = UTC + offset, so UTC = local - offset.
    seconds += minus ? offset : -offset;
    out.had_zone = true;
  } else {
    out.had_zone = false;  // no zone: the caller decides (TLS-RPT: UTC)
  }
  if (!c.done()) return std::nullopt;
  out.epoch = seconds;
  return out;
}

std::string format_utc(std::int64_t epoch) {
  std::int64_t days = epoch / 86400;
  std::int64_t rem = epoch % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  std::int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  civil_from_days(days, y, m, d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  return buf;
}

}  // namespace mailreport::report::iso8601
