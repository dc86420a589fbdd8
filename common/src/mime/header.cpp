#include "mailreport/mime/header.hpp"

#include <gmime/gmime.h>
#include <strings.h>

#include <memory>
#include <mutex>

namespace mailreport::mime {

void ensure_initialized() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

namespace {
struct GObjectDeleter {
  void operator()(void* p) const noexcept { g_object_unref(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectDeleter>;

// Raw 8-bit header bytes that are not UTF-8 (Latin-1 names, cut sequences) become U+FFFD, so
// that every string in the report models is valid UTF-8 (JSON output and the store rely on it).
std::string valid_utf8(const char* s) {
  if (s == nullptr) return {};
  if (g_utf8_validate(s, -1, nullptr)) return s;
  std::unique_ptr<gchar, decltype(&g_free)> fixed(g_utf8_make_valid(s, -1), &g_free);
  return fixed.get();
}
}  // namespace

std::vector<HeaderField> parse_header_fields(std::string_view block) {
  ensure_initialized();
  std::vector<HeaderField> out;
  // GMime parses a header block as the headers of a (body-less) message part; the blank line
  // we append ends the block even when the input did not.
  std::string text(block);
  text.append("\n\n");
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(text.data(), text.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeObject> part(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!part) return out;
  GMimeHeaderList* headers = g_mime_object_get_header_list(part.get());
  int count = g_mime_header_list_get_count(headers);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(headers, i);
    const char* name = g_mime_header_get_name(h);
    const char* value = g_mime_header_get_value(h);
    if (!name) continue;
    HeaderField f;
    f.name = valid_utf8(name);
    f.value = valid_utf8(value);
    // GMime keeps the raw value's surrounding whitespace in some versions; trim it.
    auto first = f.value.find_first_not_of(" \t\r\n");
    auto last = f.value.find_last_not_of(" \t\r\n");
    f.value = first == std::string::npos ? std::string() : f.value.substr(first, last - first + 1);
    out.push_back(std::move(f));
  }
  return out;
}

const HeaderField* find_field(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (f.name.size() == name.size() &&
        ::strncasecmp(f.name.data(), name.data(), name.size()) == 0) {
      return &f;
    }
  }
  return nullptr;
}

std::vector<std::string> all_values(const std::vector<HeaderField>& fields, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& f : fields) {
    if (f.name.size() == name.size() &&
        ::strncasecmp(f.name.data(), name.data(), name.size()) == 0) {
      out.push_back(f.value);
    }
  }
  return out;
}

}  // namespace mailreport::mime
