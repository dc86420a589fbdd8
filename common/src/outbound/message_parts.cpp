// outbound/message_parts: the pieces the report messages we build share (see
// message_parts.hpp).
#include "outbound/message_parts.hpp"

#include <openssl/rand.h>

#include <array>
#include <cstring>

namespace mailreport::outbound::detail {

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 30);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

std::string rfc5322_date(std::int64_t t) {
  DateTimePtr dt(g_date_time_new_from_unix_utc(t));
  if (!dt) return {};
  GString text(g_mime_utils_header_format_date(dt.get()));
  return text ? std::string(text.get()) : std::string();
}

std::string wrap(std::string_view paragraph) {
  std::string out;
  std::size_t line = 0;
  std::size_t pos = 0;
  while (pos < paragraph.size()) {
    auto space = paragraph.find(' ', pos);
    if (space == std::string_view::npos) space = paragraph.size();
    const std::string_view word = paragraph.substr(pos, space - pos);
    if (line > 0 && line + 1 + word.size() > 76) {
      out += '\n';
      line = 0;
    } else if (line > 0) {
      out += ' ';
      ++line;
    }
    out += word;
    line += word.size();
    pos = space + 1;
  }
  return out + "\n";
}

GPtr<GMimePart> part_with_text(const char* type, const char* subtype, std::string_view content,
                               GMimeContentEncoding encoding) {
  GPtr<GMimePart> part(g_mime_part_new_with_type(type, subtype));
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(content.data(), content.size()));
  GPtr<GMimeDataWrapper> wrapper(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part.get(), wrapper.get());
  g_mime_part_set_content_encoding(part.get(), encoding);
  return part;
}

std::string random_message_id(const std::string& domain) {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    // Without randomness (never seen in practice) the id must still be unique.
    const auto t = static_cast<unsigned long long>(g_get_real_time());
    std::memcpy(bytes.data(), &t, sizeof t);
  }
  return hex(bytes.data(), bytes.size()) + "@" + domain;
}

std::string message_to_crlf(GMimeMessage* message) {
  GString out(g_mime_object_to_string(GMIME_OBJECT(message), nullptr));
  return out ? to_crlf(out.get()) : std::string();
}

}  // namespace mailreport::outbound::detail
