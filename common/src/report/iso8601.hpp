// ISO 8601 / RFC 3339 date-times as used by SMTP TLS reports (RFC 8460 §4.4: "date-time" per
// RFC 3339 §5.6), parsed and formatted by hand: the format is small and no installed library
// parses it. Lenient on input, strict on output.
//
// Accepted: "2016-04-01T00:00:00Z", lower-case 't'/'z', a space instead of 'T', fractional
// seconds (dropped), numeric offsets "+02:00" / "+0200" / "+02", no zone at all (taken as
// UTC; Microsoft sends that), a bare date "2016-04-01" (midnight UTC), leap second 60
// (clamped to 59). Not done: week dates, ordinal dates, reduced-precision times.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailreport::report::iso8601 {

struct Parsed {
  std::int64_t epoch = 0;  // UTC seconds
  bool had_zone = true;    // false when the text carried no Z / offset (assumed UTC)
};

std::optional<Parsed> parse(std::string_view text);

// "2016-04-01T00:00:00Z"
std::string format_utc(std::int64_t epoch);

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12), and back.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept;
void civil_from_days(std::int64_t days, std::int64_t& y, unsigned& m, unsigned& d) noexcept;

}  // namespace mailreport::report::iso8601
