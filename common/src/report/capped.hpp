// The "capped decompression" layer shared by gzip and zip (RFC 9990 §8.1 names zip/gzip bombs
// as a risk): a ByteSource over decompressed output that fails with LimitExceeded once the
// output passes a size cap, or once output / input passes a ratio cap (checked only after a
// grace amount of output, so that small, highly compressible reports pass).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "mailreport/util/bytes.hpp"

namespace mailreport::report::detail {

struct DecompressionCaps {
  std::uint64_t max_bytes = 256ull << 20;  // decompressed bytes per stream
  double max_ratio = 200.0;                // decompressed / compressed
  std::uint64_t ratio_grace_bytes = 1ull << 20;
};

class CappedSource final : public ByteSource {
 public:
  // `consumed_input` reports how many compressed bytes the decoder has consumed so far;
  // `what` names the layer in messages ("gzip", "zip").
  CappedSource(ByteSource& decoded, std::function<std::uint64_t()> consumed_input,
               DecompressionCaps caps, std::string what);

  Result<std::size_t> read(std::span<char> buf) override;

  std::uint64_t produced() const noexcept { return produced_; }
  // The limit error, once a cap was hit (every later read returns it again).
  const std::optional<Error>& tripped() const noexcept { return tripped_; }

 private:
  ByteSource& decoded_;
  std::function<std::uint64_t()> consumed_input_;
  DecompressionCaps caps_;
  std::string what_;
  std::uint64_t produced_ = 0;
  std::optional<Error> tripped_;
};

// Reads and discards the rest of `src` (so that a cap applies to what is skipped, too).
Status drain(ByteSource& src);

}  // namespace mailreport::report::detail
