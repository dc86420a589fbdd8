// Reading mail folders for `mailreport import`: mbox files (RFC 4155), split into their
// messages by GMime's mbox mode, and byte ranges of files turned into Inputs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::cli {

struct ByteRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;  // exclusive
};

// True when the file starts with an mbox "From " separator line (RFC 4155 §2).
bool looks_like_mbox(const Input& input);

// The byte ranges of the messages of an mbox file, each from its header to the next "From "
// line (the separator line itself is left out).
Result<std::vector<ByteRange>> split_mbox(const std::filesystem::path& path);

// The bytes `range` of `path` as an Input: in memory up to `memory_limit` bytes, else copied
// to an unnamed temporary file in `temp_dir`.
Result<Input> slice_file(const std::filesystem::path& path, ByteRange range, std::string name,
                         const std::filesystem::path& temp_dir,
                         std::uint64_t memory_limit = 64ull << 20);

}  // namespace mailreport::cli
