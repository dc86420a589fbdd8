// Turning a stored raw message back into an Input (for `mailreport reparse`): decompressed
// into memory when small, else into an unnamed temporary file, and checked against the size
// and SHA-256 recorded when it was received.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mailreport/store/sha256.hpp"
#include "mailreport/store/store.hpp"

namespace mailreport::store {

namespace {

Error io_error(const std::string& what) {
  return make_error(ErrorCode::Io, what + ": " + std::strerror(errno));
}

// O_TMPFILE: the file has no name and vanishes with its last descriptor; where the file system
// lacks it, a named file is created and unlinked at once.
Result<UniqueFd> temp_file(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return UniqueFd(fd);
  std::string templ = (dir / "mailreport-raw-XXXXXX").string();
  fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0) return io_error(dir.string());
  ::unlink(templ.c_str());
  return UniqueFd(fd);
}

Status write_all(int fd, std::span<const char> data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("temporary file");
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

Result<Input> load_raw_input(Store& store, const RawMessageInfo& info,
                             const std::filesystem::path& temp_dir, std::uint64_t memory_limit) {
  std::string name = "raw message " + std::to_string(info.id);
  Sha256 sha;
  std::uint64_t size = 0;
  auto check = [&]() -> Status {
    std::string digest = sha.hex();
    if (size != info.size || digest != info.sha256) {
      return make_error(ErrorCode::Store,
                        name + ": stored bytes do not match the recorded size " + "and SHA-256");
    }
    return {};
  };
  if (info.size <= memory_limit) {
    std::string data;
    data.reserve(info.size);
    auto st = store.read_raw(info.id, [&](std::span<const char> piece) -> Status {
      sha.update({piece.data(), piece.size()});
      size += piece.size();
      if (size > memory_limit) return make_error(ErrorCode::Store, name + ": larger than recorded");
      data.append(piece.data(), piece.size());
      return {};
    });
    if (!st) return st.error();
    if (auto c = check(); !c) return c.error();
    return Input::from_memory(std::move(data), name);
  }
  std::error_code ec;
  auto dir = temp_dir.empty() ? std::filesystem::temp_directory_path(ec) : temp_dir;
  if (dir.empty()) dir = "/tmp";
  auto fd = temp_file(dir);
  if (!fd) return std::move(fd).error();
  auto st = store.read_raw(info.id, [&](std::span<const char> piece) -> Status {
    sha.update({piece.data(), piece.size()});
    size += piece.size();
    return write_all(fd->get(), piece);
  });
  if (!st) return st.error();
  if (auto c = check(); !c) return c.error();
  return Input::from_fd(std::move(*fd), size, name);
}

}  // namespace mailreport::store
