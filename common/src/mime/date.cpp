// RFC 5322 date parsing through GMime; see mailreport/mime/date.hpp.
#include "mailreport/mime/date.hpp"

#include <gmime/gmime.h>

#include <memory>
#include <string>

#include "mailreport/mime/header.hpp"

namespace mailreport::mime {

namespace {
struct DateTimeDeleter {
  void operator()(GDateTime* p) const noexcept { g_date_time_unref(p); }
};
}  // namespace

std::optional<std::int64_t> parse_date(std::string_view text) {
  // GMime's tokenizer needs at least a day, a month and a year; anything shorter is not a
  // date, and an empty string would come back as NULL anyway.
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;
  ensure_initialized();
  const std::string copy(text);  // GMime wants a NUL-terminated string
  std::unique_ptr<GDateTime, DateTimeDeleter> dt(g_mime_utils_header_decode_date(copy.c_str()));
  if (!dt) return std::nullopt;
  return static_cast<std::int64_t>(g_date_time_to_unix(dt.get()));
}

}  // namespace mailreport::mime
