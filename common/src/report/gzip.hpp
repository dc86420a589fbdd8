// Streaming gzip (RFC 1952) and zlib (RFC 1950) decompression with zlib's inflate.
// Concatenated gzip members are read one after the other (RFC 1952 §2.2); bytes after the
// last member that are not another member (Mimecast appends "\r\n") are ignored with a note.
// Caps are applied by wrapping the output in a CappedSource (capped.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mailreport/util/bytes.hpp"

namespace mailreport::report::detail {

class GzipSource final : public ByteSource {
 public:
  // `notes` (optional) receives remarks such as ignored trailing bytes.
  explicit GzipSource(ByteSource& compressed, std::vector<std::string>* notes = nullptr);
  ~GzipSource() override;
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  Result<std::size_t> read(std::span<char> buf) override;

  // Compressed bytes consumed so far (all members).
  std::uint64_t consumed() const noexcept;

 private:
  struct Inflater;
  Status refill();

  ByteSource& in_;
  std::vector<std::string>* notes_;
  std::unique_ptr<Inflater> z_;
  std::array<char, 65536> buf_{};
  bool input_eof_ = false;
  bool done_ = false;
  std::uint64_t members_ = 0;
};

}  // namespace mailreport::report::detail
