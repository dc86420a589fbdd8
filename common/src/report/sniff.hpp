// Content sniffing: what a stream holds, judged from its first bytes. Used on whole inputs,
// on decoded MIME parts, on gzip output and on zip entries, because real-world reports are
// often mislabelled (application/octet-stream, text/plain, .txt).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "mailreport/util/bytes.hpp"

namespace mailreport::report::detail {

enum class Format {
  Empty,
  Gzip,     // RFC 1952 magic 1f 8b
  Zip,      // "PK\x03\x04" (or the empty-archive "PK\x05\x06")
  Xml,      // '<' after an optional BOM and white space
  Json,     // '{' after an optional BOM and white space
  Message,  // RFC 5322 header lines, optionally after an mbox "From " line
  Base64,   // base64 text of a gzip or zip stream ("H4sI...", "UEsDB...")
  Unknown,
};

const char* describe(Format f) noexcept;

// Judges `head` (the first few KiB of a stream).
Format sniff(std::string_view head);

// True when `head` (after BOM and white space) starts with `field` + ':' case-insensitively,
// e.g. starts_with_field(text, "Feedback-Type").
bool starts_with_field(std::string_view head, std::string_view field);

// A stream whose first bytes are read ahead for sniffing and then replayed.
class PeekSource final : public ByteSource {
 public:
  explicit PeekSource(ByteSource& inner) : inner_(inner) {}
  // Reads up to `n` bytes ahead (fewer at end of stream).
  Status fill(std::size_t n = 4096);
  std::string_view head() const noexcept { return head_; }
  Result<std::size_t> read(std::span<char> buf) override;

 private:
  ByteSource& inner_;
  std::string head_;
  std::size_t pos_ = 0;
};

}  // namespace mailreport::report::detail
