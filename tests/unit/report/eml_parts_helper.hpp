// Test-only helper for the ARF and DSN corpus tests: splits a whole .eml into the parts that
// parse_arf / parse_dsn take, with GMime directly. The production MIME walk is
// report/extract.cpp's job; this is deliberately small and only as clever as the corpus
// needs (mbox "From " line, bare-CR line endings, nested multiparts).
#pragma once

#include <gmime/gmime.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mailreport/mime/header.hpp"
#include "testsupport.hpp"

namespace mailreport::test {

struct EmlParts {
  std::vector<mime::HeaderField> outer_headers;
  std::string top_type;
  std::string human_readable;   // first text/plain leaf
  std::string feedback_report;  // message/feedback-report, decoded
  std::string delivery_status;  // message/delivery-status (or global-), decoded
  std::string original;         // message/rfc822 serialised, or *rfc822-header(s) decoded
  std::string original_type;
};

namespace eml_detail {

struct GObjectUnref {
  void operator()(void* p) const noexcept { g_object_unref(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline std::string content_type(GMimeObject* obj) {
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  if (!ct) return "text/plain";
  const char* t = g_mime_content_type_get_media_type(ct);
  const char* s = g_mime_content_type_get_media_subtype(ct);
  return lower(std::string(t ? t : "") + "/" + (s ? s : ""));
}

inline std::string decoded_content(GMimePart* part) {
  GMimeDataWrapper* w = g_mime_part_get_content(part);
  if (!w) return {};
  GPtr<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(w, mem.get());
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

inline std::string serialise(GMimeObject* obj) {
  char* s = g_mime_object_to_string(obj, nullptr);
  std::string out = s ? s : "";
  g_free(s);
  return out;
}

inline void walk(GMimeObject* obj, EmlParts& out) {
  const std::string type = content_type(obj);
  if (GMIME_IS_MULTIPART(obj)) {
    auto* mp = GMIME_MULTIPART(obj);
    for (int i = 0; i < g_mime_multipart_get_count(mp); ++i) {
      walk(g_mime_multipart_get_part(mp, i), out);
    }
    return;
  }
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    std::string text = inner ? serialise(GMIME_OBJECT(inner)) : std::string();
    if (type == "message/feedback-report") {
      out.feedback_report = text;
    } else if (type == "message/delivery-status" || type == "message/global-delivery-status") {
      out.delivery_status = text;
    } else if (out.original.empty()) {
      out.original = text;
      out.original_type = type;
    }
    return;
  }
  if (!GMIME_IS_PART(obj)) return;
  std::string body = decoded_content(GMIME_PART(obj));
  if (type == "message/feedback-report") {
    out.feedback_report = body;
  } else if (type == "message/delivery-status" || type == "message/global-delivery-status") {
    out.delivery_status = body;
  } else if (type == "text/rfc822-headers" || type == "text/rfc822-header" ||
             type == "message/rfc822-headers" || type == "message/global-headers") {
    if (out.original.empty()) {
      out.original = body;
      out.original_type = type;
    }
  } else if (type == "text/plain" && out.human_readable.empty()) {
    out.human_readable = body;
  }
}

}  // namespace eml_detail

inline EmlParts split_eml(std::string raw) {
  using namespace eml_detail;
  mime::ensure_initialized();
  // Bare-CR files (classic Mac) are unreadable to GMime: make them LF.
  if (raw.find('\n') == std::string::npos) {
    for (auto& c : raw) {
      if (c == '\r') c = '\n';
    }
  }
  // An mbox envelope line is not a header field.
  if (raw.rfind("From ", 0) == 0) raw.erase(0, raw.find('\n') + 1);
  EmlParts out;
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!msg) return out;
  GMimeHeaderList* hl = g_mime_object_get_header_list(GMIME_OBJECT(msg.get()));
  for (int i = 0; i < g_mime_header_list_get_count(hl); ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(hl, i);
    const char* v = g_mime_header_get_value(h);
    out.outer_headers.push_back({g_mime_header_get_name(h), v ? v : ""});
  }
  GMimeObject* body = g_mime_message_get_mime_part(msg.get());
  if (!body) return out;
  out.top_type = content_type(body);
  walk(body, out);
  return out;
}

inline std::vector<ManifestRow> manifest_rows(const std::filesystem::path& corpus,
                                              const std::string& kind) {
  (void)corpus;  // always test::corpus_dir()
  return corpus_manifest(kind);
}

// "k=v; k=v" pairs from the notes segment that starts with `label` (e.g. "ARF: ") and ends
// at the next " | ".
inline std::vector<std::pair<std::string, std::string>> note_pairs(const std::string& notes,
                                                                   const std::string& label) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = notes.find(label);
  if (at == std::string::npos) return out;
  at += label.size();
  std::size_t end = notes.find(" | ", at);
  std::string seg = notes.substr(at, end == std::string::npos ? std::string::npos : end - at);
  std::size_t start = 0;
  for (;;) {
    std::size_t semi = seg.find("; ", start);
    std::string item =
        seg.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
    std::size_t eq = item.find('=');
    if (eq != std::string::npos) out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    if (semi == std::string::npos) break;
    start = semi + 2;
  }
  return out;
}

}  // namespace mailreport::test
