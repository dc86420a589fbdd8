// The LMTP message spool: the bytes of one message between DATA and the final ".".
// Small messages stay in memory; past a threshold the spool spills to an unlinked temporary
// file (O_TMPFILE in the spool directory, or mkstemp + unlink where O_TMPFILE is not
// supported), so that a message of any size allowed by limits.message-size is held in bounded
// memory. The finished spool becomes a mailreport::Input that the ingest step can read any
// number of times. Nothing here is durable: durability is the store's job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::lmtp {

class Spool {
 public:
  static constexpr std::size_t kDefaultMemoryLimit = 1u << 20;

  // `dir` is where a spilled message goes ("" = the system temporary directory).
  explicit Spool(std::filesystem::path dir, std::size_t memory_limit = kDefaultMemoryLimit);
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  Spool(Spool&&) = default;
  Spool& operator=(Spool&&) = default;
  ~Spool() = default;

  // Appends bytes. After a failure (the temporary file could not be created or written) the
  // spool stays failed and ignores further input; finish() then returns the error.
  void append(std::string_view bytes);
  std::uint64_t size() const noexcept { return size_; }
  bool spilled() const noexcept { return static_cast<bool>(fd_); }
  bool failed() const noexcept { return failed_.has_value(); }

  // Hands the message over as an Input named `name`; the spool is empty afterwards.
  Result<Input> finish(std::string name);
  // Drops everything (and the temporary file) and starts over.
  void clear();

 private:
  Status spill();
  Status flush();

  std::filesystem::path dir_;
  std::size_t memory_limit_;
  std::string buffer_;  // the whole message while in memory; a write buffer once spilled
  UniqueFd fd_;
  std::uint64_t size_ = 0;
  std::optional<Error> failed_;
};

}  // namespace mailreport::lmtp
