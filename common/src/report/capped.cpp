// Capped decompression: see capped.hpp.
#include "report/capped.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

namespace mailreport::report::detail {

namespace {
std::string format_ratio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", r);
  return buf;
}
}  // namespace

CappedSource::CappedSource(ByteSource& decoded, std::function<std::uint64_t()> consumed_input,
                           DecompressionCaps caps, std::string what)
    : decoded_(decoded),
      consumed_input_(std::move(consumed_input)),
      caps_(caps),
      what_(std::move(what)) {}

Result<std::size_t> CappedSource::read(std::span<char> buf) {
  if (tripped_) return *tripped_;
  auto n = decoded_.read(buf);
  if (!n) return n;
  produced_ += *n;
  if (produced_ > caps_.max_bytes) {
    tripped_ = make_error(ErrorCode::LimitExceeded, what_ + ": decompressed size exceeds " +
                                                        std::to_string(caps_.max_bytes) + " bytes");
    return *tripped_;
  }
  if (produced_ > caps_.ratio_grace_bytes) {
    auto in = std::max<std::uint64_t>(consumed_input_(), 1);
    if (static_cast<double>(produced_) > caps_.max_ratio * static_cast<double>(in)) {
      tripped_ = make_error(ErrorCode::LimitExceeded, what_ + ": compression ratio exceeds " +
                                                          format_ratio(caps_.max_ratio) + ":1");
      return *tripped_;
    }
  }
  return n;
}

Status drain(ByteSource& src) {
  std::array<char, 65536> buf;
  for (;;) {
    auto n = src.read(buf);
    if (!n) return std::move(n).error();
    if (*n == 0) return {};
  }
}

}  // namespace mailreport::report::detail
