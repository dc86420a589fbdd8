// The input layer of the DMARC aggregate parser: fixes, on the bytes, the two problems that an
// XML parser cannot recover from by itself, before libxml2 sees them.
//
// 1. Character sets. A report whose XML declaration names a legacy, ASCII-compatible encoding
//    (windows-1252, ISO-8859-x, US-ASCII, Shift_JIS, ...) is converted to UTF-8 here with iconv,
//    every byte that is not valid in that encoding becoming U+FFFD. libxml2 2.9 would instead
//    stop the whole document at the first byte its converter rejects (a windows-1252 report
//    holding 0x81, a "US-ASCII" report holding a Latin-1 name), print the error to stderr, and
//    refuse encodings it does not know. UTF-8 (declared or not), UTF-16/32 and anything with a
//    byte-order mark pass through untouched: libxml2 handles those itself.
// 2. A stray <xs:schema ...> start tag before <feedback>, never closed (seen from some RFC 7489
//    reporters; parsedmarc strips it too): it is dropped when it appears in the first kHead
//    bytes, so that <feedback> is the root, also when the stray tag is self-closed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mailreport/util/bytes.hpp"

namespace mailreport::report::detail {

class DmarcInputSource final : public ByteSource {
 public:
  explicit DmarcInputSource(ByteSource& inner);
  ~DmarcInputSource() override;
  DmarcInputSource(const DmarcInputSource&) = delete;
  DmarcInputSource& operator=(const DmarcInputSource&) = delete;

  // Reads the start of the input and decides how to present it. Call once, before read().
  Status prepare();

  // True when the output is UTF-8 whatever the declaration says: the XML parser must then
  // ignore the declared encoding (XML_PARSE_IGNORE_ENC).
  bool ignore_declared_encoding() const noexcept { return ignore_declaration_; }
  // What the layer did, for the report's `errors` (undecodable bytes, a dropped tag).
  std::vector<std::string> notes() const;

  Result<std::size_t> read(std::span<char> buf) override;

 private:
  struct Converter;

  Result<std::size_t> read_raw(std::span<char> buf);
  Result<std::size_t> convert(std::span<char> buf);
  Status fill_input();

  ByteSource& inner_;
  std::string head_;  // bytes read by prepare(), served first
  std::size_t head_pos_ = 0;
  bool ignore_declaration_ = false;
  std::string declared_;
  std::string unsupported_;  // a declared encoding iconv does not know
  std::string dropped_tag_;  // the stray schema tag, when one was dropped
  std::unique_ptr<Converter> conv_;
  // Conversion buffers (only when converting).
  std::vector<char> in_;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  bool in_eof_ = false;
  std::vector<char> out_;
  std::size_t out_begin_ = 0;
  std::size_t out_end_ = 0;
  bool flushed_ = false;
  std::uint64_t consumed_ = 0;  // input bytes converted so far
  std::uint64_t replaced_ = 0;
  std::uint64_t first_replaced_at_ = 0;
};

}  // namespace mailreport::report::detail
