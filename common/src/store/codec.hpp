// zlib (RFC 1950/1951) compression of raw messages, streamed: the Deflater hands out chunks of
// at most `chunk_size` compressed bytes as input arrives, the Inflater hands back the original
// bytes piece by piece. zlib's headers stay in codec.cpp.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport::store {

using ChunkSink = std::function<Status(std::string_view)>;

class Deflater {
 public:
  Deflater(int level, std::size_t chunk_size);
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Compresses `in`; full chunks go to `out`.
  Status write(std::string_view in, const ChunkSink& out);
  // Flushes the end of the stream and the last (partial) chunk.
  Status finish(const ChunkSink& out);
  std::uint64_t compressed_bytes() const noexcept { return total_out_; }

 private:
  Status pump(int flush, const ChunkSink& out);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string buf_;
  std::size_t used_ = 0;
  std::uint64_t total_out_ = 0;
};

class Inflater {
 public:
  Inflater();
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  Status write(std::string_view in, const ChunkSink& out);
  // Fails when the stream did not end (a truncated message).
  Status finish() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool ended_ = false;
};

}  // namespace mailreport::store
