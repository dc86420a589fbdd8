// Content sniffing: see sniff.hpp.
#include "report/sniff.hpp"

#include <algorithm>
#include <cstring>

namespace mailreport::report::detail {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

std::string_view skip_bom_and_space(std::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

std::size_t line_end(std::string_view s) {
  auto e = s.find_first_of("\r\n");
  return e == std::string_view::npos ? s.size() : e;
}

// RFC 5322 §2.2: field-name = 1*ftext (printable US-ASCII except ':'), then ':'. Some
// generators put white space before the colon; accept that too.
bool looks_like_header_line(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] > 32 && line[i] < 127 && line[i] != ':') ++i;
  if (i == 0) return false;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  return i < line.size() && line[i] == ':';
}

bool is_base64_text(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || is_space(c);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const char* describe(Format f) noexcept {
  switch (f) {
    case Format::Empty: return "empty";
    case Format::Gzip: return "gzip";
    case Format::Zip: return "zip";
    case Format::Xml: return "XML";
    case Format::Json: return "JSON";
    case Format::Message: return "message";
    case Format::Base64: return "base64 text";
    case Format::Unknown: return "unrecognised content";
  }
  return "unknown";
}

Format sniff(std::string_view head) {
  if (head.empty()) return Format::Empty;
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    return Format::Gzip;
  }
  if (head.substr(0, 4) == std::string_view("PK\x03\x04", 4) ||
      head.substr(0, 4) == std::string_view("PK\x05\x06", 4)) {
    return Format::Zip;
  }
  // UTF-16 with a byte-order mark: only XML is plausible (libxml2 decodes it).
  if (head.substr(0, 2) == "\xFF\xFE" || head.substr(0, 2) == "\xFE\xFF") {
    std::string_view rest = head.substr(2);
    char first = rest.size() >= 2 ? (rest[0] ? rest[0] : rest[1]) : 0;
    if (first == '<') return Format::Xml;
  }
  std::string_view body = skip_bom_and_space(head);
  if (body.empty()) return Format::Empty;
  if (body.front() == '<') return Format::Xml;
  if (body.front() == '{') return Format::Json;

  std::string_view text = head;
  // An mbox envelope line ("From sender date") before the header.
  if (text.substr(0, 5) == "From ") {
    std::size_t e = line_end(text);
    if (e == text.size()) return Format::Unknown;
    text.remove_prefix(e);
    if (text.substr(0, 2) == "\r\n") {
      text.remove_prefix(2);
    } else {
      text.remove_prefix(1);
    }
  }
  if (looks_like_header_line(text.substr(0, line_end(text)))) return Format::Message;

  if ((body.substr(0, 4) == "H4sI" || body.substr(0, 5) == "UEsDB") && is_base64_text(body)) {
    return Format::Base64;
  }
  return Format::Unknown;
}

bool starts_with_field(std::string_view head, std::string_view field) {
  head = skip_bom_and_space(head);
  if (head.size() <= field.size()) return false;
  for (std::size_t i = 0; i < field.size(); ++i) {
    char a = head[i], b = field[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  std::size_t i = field.size();
  while (i < head.size() && (head[i] == ' ' || head[i] == '\t')) ++i;
  return i < head.size() && head[i] == ':';
}

Status PeekSource::fill(std::size_t n) {
  head_.resize(n);
  std::size_t got = 0;
  while (got < n) {
    auto r = inner_.read(std::span<char>(head_.data() + got, n - got));
    if (!r) {
      head_.resize(got);
      return std::move(r).error();
    }
    if (*r == 0) break;
    got += *r;
  }
  head_.resize(got);
  return {};
}

Result<std::size_t> PeekSource::read(std::span<char> buf) {
  if (pos_ < head_.size()) {
    std::size_t n = std::min(buf.size(), head_.size() - pos_);
    std::memcpy(buf.data(), head_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  return inner_.read(buf);
}

}  // namespace mailreport::report::detail
