// outbound/message_parts (internal): what the report messages we build with GMime share —
// RAII holders for GMime/GLib objects, CRLF conversion, RFC 5322 dates, prose wrapping, a part
// with given content and encoding, and random Message-IDs. Used by failure_report.cpp and
// aggregate_message.cpp only.
#pragma once

#include <gmime/gmime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mailreport::outbound::detail {

struct GObjectUnref {
  void operator()(void* p) const noexcept { g_object_unref(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectUnref>;
struct GFree {
  void operator()(void* p) const noexcept { g_free(p); }
};
using GString = std::unique_ptr<char, GFree>;
struct DateTimeUnref {
  void operator()(GDateTime* d) const noexcept { g_date_time_unref(d); }
};
using DateTimePtr = std::unique_ptr<GDateTime, DateTimeUnref>;

// Lower-case hex of `n` bytes.
std::string hex(const unsigned char* data, std::size_t n);
// Bare LF made CRLF (GMime writes LF; the messages we hand on have CRLF).
std::string to_crlf(std::string_view text);
// An RFC 5322 date-time of `t` (UTC); "" when GLib cannot represent it.
std::string rfc5322_date(std::int64_t t);
// A paragraph of prose broken into lines of at most 76 characters where spaces allow, ending
// with a newline.
std::string wrap(std::string_view paragraph);
// A leaf part type/subtype holding `content`, written with `encoding`.
GPtr<GMimePart> part_with_text(const char* type, const char* subtype, std::string_view content,
                               GMimeContentEncoding encoding);
// A fresh Message-ID (without angle brackets): 32 random hex digits "@" domain.
std::string random_message_id(const std::string& domain);
// The whole message as GMime writes it, with CRLF line ends; "" when GMime fails.
std::string message_to_crlf(GMimeMessage* message);

}  // namespace mailreport::outbound::detail
