// Streaming gzip (RFC 1952) and zlib (RFC 1950) decompression with zlib's inflate.
// Concatenated gzip members are read one after the other (RFC 1952 §2.2); bytes after the
// last member that are not another member (Mimecast appends "\r\n") are ignored with a note.
// Caps are applied by wrapping the output in a CappedSource (capped.hpp).
// GzipWriter: the other way, gzip compression with zlib's deflate (the aggregate reports we
// send, RFC 7489 §7.2.1.1 / RFC 9990 §3.5.2 / RFC 8460 §5.3), one reusable stream.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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

// Compresses what is written into one gzip member held in memory. finish() hands it out and
// resets the stream, so one writer (one zlib state, allocated once) serves many reports.
class GzipWriter {
 public:
  explicit GzipWriter(int level = 6);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;

  Status write(std::string_view in);
  // The gzip bytes of everything written since the last finish().
  Result<std::string> finish();
  // Uncompressed bytes written since the last finish().
  std::uint64_t bytes_in() const noexcept;

 private:
  struct Deflater;
  Status pump(bool finish);
  std::unique_ptr<Deflater> z_;
  std::string out_;  // a buffer kept across streams; the output is out_[0, used_)
  std::size_t used_ = 0;
};

}  // namespace mailreport::report::detail
