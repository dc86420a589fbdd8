// Byte streams. Every parser reads through ByteSource so that inputs of any size (a 1 GB
// aggregate report, a spooled LMTP message) are processed in bounded memory, and so that
// decompression layers (gzip, zip, MIME transfer decoding) can be stacked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport {

// A pull stream. read() returns the number of bytes written into buf, 0 at end of stream.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<std::size_t> read(std::span<char> buf) = 0;
};

// Reads a whole source into a string, failing with LimitExceeded past max_bytes.
Result<std::string> read_all(ByteSource& src, std::size_t max_bytes);

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  Result<std::size_t> read(std::span<char> buf) override;

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

// An owned file descriptor (move-only).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

class FdSource final : public ByteSource {
 public:
  explicit FdSource(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<std::size_t> read(std::span<char> buf) override;

 private:
  UniqueFd fd_;
};

// A message or file to be parsed: either bytes in memory or a file on disk (possibly an
// unlinked spool file). It can be opened for reading any number of times, which lets the
// ingest step store the raw bytes and parse them in separate passes.
class Input {
 public:
  static Input from_memory(std::string data, std::string name = "<memory>");
  static Result<Input> from_file(const std::filesystem::path& path);
  // Takes ownership of an open, seekable descriptor (e.g. an O_TMPFILE spool).
  static Input from_fd(UniqueFd fd, std::uint64_t size, std::string name);

  const std::string& name() const noexcept { return name_; }
  std::uint64_t size() const noexcept { return size_; }
  bool in_memory() const noexcept { return !fd_; }
  // Only for in_memory() inputs.
  std::string_view memory() const noexcept { return data_; }
  // For file inputs: a new descriptor positioned at 0 (caller owns it).
  Result<UniqueFd> dup_fd() const;

  Result<std::unique_ptr<ByteSource>> open() const;
  // Reads at most max_bytes from the start (for sniffing).
  Result<std::string> head(std::size_t max_bytes) const;

 private:
  std::string name_;
  std::string data_;
  std::shared_ptr<UniqueFd> fd_;
  std::uint64_t size_ = 0;
};

}  // namespace mailreport
