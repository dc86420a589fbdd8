// Durations ("30d", "12h", "5m", "90s", "2w", plain seconds), sizes ("50MB", "256KB", "1GB",
// plain bytes; powers of 1024), rates ("1/1d", or Stalwart's "[1, 1d]") and octal file modes
// ("0660"), as written in the configuration; durations in milliseconds ("500ms") for the few
// keys that need them.
#include <cctype>
#include <cstdint>
#include <limits>
#include <string>

#include "config/units.hpp"
#include "mailreport/config/config.hpp"

namespace mailreport::config {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 'text' for a message. (Built by appending: g++ 12 at -O3 warns a false -Wrestrict on
// "'" + std::string(...), GCC bug 105329.)
std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits "50MB" into 50 and "MB"; nullopt when there are no leading digits or they overflow.
struct Number {
  std::uint64_t value = 0;
  std::string_view unit;
};

Result<Number> split_number(std::string_view text, std::string_view what) {
  std::string_view s = trim(text);
  std::size_t i = 0;
  std::uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    const auto digit = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return make_error(ErrorCode::Invalid, quoted(s) + " is too large");
    }
    v = v * 10 + digit;
    ++i;
  }
  if (i == 0) {
    return make_error(ErrorCode::Invalid, quoted(s) + " is not a " + std::string(what) +
                                              " (a whole number and a unit)");
  }
  return Number{v, trim(s.substr(i))};
}

Result<std::uint64_t> scale(const Number& n, std::uint64_t unit, std::string_view text) {
  if (n.value > std::numeric_limits<std::uint64_t>::max() / unit) {
    return make_error(ErrorCode::Invalid, quoted(trim(text)) + " is too large");
  }
  return n.value * unit;
}

}  // namespace

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  auto n = split_number(text, "duration");
  if (!n.ok()) return std::move(n).error();
  std::uint64_t unit = 0;
  const std::string u = lower(n->unit);
  if (u.empty() || u == "s") {
    unit = 1;
  } else if (u == "m") {
    unit = 60;
  } else if (u == "h") {
    unit = 3600;
  } else if (u == "d") {
    unit = 86400;
  } else if (u == "w") {
    unit = 7 * 86400;
  } else {
    return make_error(ErrorCode::Invalid,
                      quoted(trim(text)) + ": unknown unit (use s, m, h, d or w)");
  }
  auto secs = scale(*n, unit, text);
  if (!secs.ok()) return std::move(secs).error();
  // std::chrono::seconds holds a signed 64-bit count.
  if (*secs > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return make_error(ErrorCode::Invalid, quoted(trim(text)) + " is too large");
  }
  return std::chrono::seconds(static_cast<std::int64_t>(*secs));
}

Result<std::uint64_t> parse_size(std::string_view text) {
  auto n = split_number(text, "size");
  if (!n.ok()) return std::move(n).error();
  std::string u = lower(n->unit);
  // "KiB" is accepted as well as "KB" and "K"; all of them mean 1024.
  if (u.size() == 3 && u[1] == 'i' && u[2] == 'b') u.erase(1, 1);
  if (u.size() == 2 && u[1] == 'b') u.pop_back();
  std::uint64_t unit = 0;
  if (u.empty() || u == "b") {
    unit = 1;
  } else if (u == "k") {
    unit = 1ull << 10;
  } else if (u == "m") {
    unit = 1ull << 20;
  } else if (u == "g") {
    unit = 1ull << 30;
  } else if (u == "t") {
    unit = 1ull << 40;
  } else {
    return make_error(ErrorCode::Invalid,
                      quoted(trim(text)) + ": unknown unit (use B, KB, MB, GB or TB)");
  }
  return scale(*n, unit, text);
}

Result<RateLimit> parse_rate_limit(std::string_view text) {
  std::string_view s = trim(text);
  const std::string whole(s);
  const auto bad = [&whole](std::string_view why) {
    return make_error(ErrorCode::Invalid,
                      "'" + whole + "' is not a rate like \"1/1d\" (" + std::string(why) + ")");
  };
  // Stalwart writes a rate as "[count, period]"; ours is "count/period". Both mean the same.
  char separator = '/';
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    s = s.substr(1, s.size() - 2);
    separator = ',';
  }
  const auto sep = s.find(separator);
  if (sep == std::string_view::npos) return bad("no count and period");
  const std::string_view count_text = trim(s.substr(0, sep));
  auto count = split_number(count_text, "count");
  if (!count.ok() || !count->unit.empty()) return bad("the count must be a whole number");
  if (count->value == 0) return bad("the count must be at least 1; write false to send nothing");
  if (count->value > std::numeric_limits<std::uint32_t>::max())
    return bad("the count is too large");
  auto period = parse_duration(s.substr(sep + 1));
  if (!period.ok()) return bad(period.error().message);
  if (period->count() <= 0) return bad("the period must be longer than 0s");
  return RateLimit{static_cast<std::uint32_t>(count->value), *period};
}

std::string format_duration(std::chrono::seconds d) {
  const std::int64_t s = d.count();
  if (s == 0) return "0s";
  struct Unit {
    std::int64_t seconds;
    const char* suffix;
  };
  for (const Unit u : {Unit{7 * 86400, "w"}, Unit{86400, "d"}, Unit{3600, "h"}, Unit{60, "m"}}) {
    if (s % u.seconds == 0) return std::to_string(s / u.seconds) + u.suffix;
  }
  return std::to_string(s) + "s";
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  struct Unit {
    unsigned shift;
    const char* suffix;
  };
  for (const Unit u : {Unit{40, "TB"}, Unit{30, "GB"}, Unit{20, "MB"}, Unit{10, "KB"}}) {
    if (bytes % (1ull << u.shift) == 0) return std::to_string(bytes >> u.shift) + u.suffix;
  }
  return std::to_string(bytes);
}

namespace detail {

Result<std::chrono::milliseconds> parse_duration_ms(std::string_view text) {
  auto n = split_number(text, "duration");
  if (!n.ok()) return std::move(n).error();
  if (lower(n->unit) == "ms") {
    if (n->value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return make_error(ErrorCode::Invalid, quoted(trim(text)) + " is too large");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(n->value));
  }
  const std::string u = lower(n->unit);
  if (!u.empty() && u != "s" && u != "m" && u != "h" && u != "d" && u != "w") {
    return make_error(ErrorCode::Invalid,
                      quoted(trim(text)) + ": unknown unit (use ms, s, m, h, d or w)");
  }
  auto secs = parse_duration(text);
  if (!secs.ok()) return std::move(secs).error();
  if (secs->count() > std::numeric_limits<std::int64_t>::max() / 1000) {
    return make_error(ErrorCode::Invalid, quoted(trim(text)) + " is too large");
  }
  return std::chrono::milliseconds(*secs);
}

Result<mode_t> parse_mode(std::string_view text) {
  const std::string_view s = trim(text);
  // chmod(1) notation: three or four octal digits ("660", "0660"); no setuid/setgid/sticky
  // bits, which mean nothing on a socket.
  if (s.size() < 3 || s.size() > 4) {
    return make_error(ErrorCode::Invalid,
                      quoted(s) + " is not an octal mode like \"0660\"");
  }
  mode_t mode = 0;
  for (char c : s) {
    if (c < '0' || c > '7') {
      return make_error(ErrorCode::Invalid,
                        quoted(s) + " is not an octal mode like \"0660\"");
    }
    mode = static_cast<mode_t>(mode * 8 + static_cast<mode_t>(c - '0'));
  }
  if (mode > 0777) {
    return make_error(ErrorCode::Invalid,
                      quoted(s) + ": only permission bits (at most 0777) are allowed");
  }
  return mode;
}

}  // namespace detail

}  // namespace mailreport::config
