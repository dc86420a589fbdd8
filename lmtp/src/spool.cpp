// Message spool of the LMTP receiver: memory first, then an unlinked temporary file.
#include "mailreport/lmtp/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace mailreport::lmtp {

namespace {

constexpr std::size_t kWriteBuffer = 64u << 10;

Error errno_error(std::string_view what, int err) {
  return make_error(ErrorCode::Io, std::string(what) + ": " + std::strerror(err));
}

// An anonymous file in `dir`: O_TMPFILE never has a name; where the file system does not
// support it, mkstemp + unlink leaves a name for an instant only.
Result<UniqueFd> open_anonymous(const std::filesystem::path& dir) {
#ifdef O_TMPFILE
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return UniqueFd(fd);
    // EISDIR / EOPNOTSUPP / EINVAL: the kernel or file system has no O_TMPFILE. Other errors
    // (ENOENT, EACCES, ENOSPC) will recur below and be reported from there.
#endif
  std::string tmpl = (dir / "mailreport-lmtp-XXXXXX").string();
  int fd2 = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd2 < 0) return errno_error("spool file in " + dir.string(), errno);
  UniqueFd owned(fd2);
  if (::unlink(tmpl.c_str()) != 0) return errno_error("unlink " + tmpl, errno);
  return owned;
}

}  // namespace

Spool::Spool(std::filesystem::path dir, std::size_t memory_limit)
    : dir_(std::move(dir)), memory_limit_(memory_limit) {
  if (dir_.empty()) {
    std::error_code ec;
    dir_ = std::filesystem::temp_directory_path(ec);
    if (ec) dir_ = "/tmp";
  }
}

void Spool::append(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;
  buffer_.append(bytes);
  size_ += bytes.size();
  Status st;
  if (!fd_) {
    if (buffer_.size() > memory_limit_) st = spill();
  } else if (buffer_.size() >= kWriteBuffer) {
    st = flush();
  }
  if (!st) {
    failed_ = std::move(st).error();
    buffer_.clear();
    buffer_.shrink_to_fit();
    fd_ = UniqueFd();
  }
}

Status Spool::spill() {
  auto fd = open_anonymous(dir_);
  if (!fd) return std::move(fd).error();
  fd_ = std::move(*fd);
  return flush();
}

Status Spool::flush() {
  std::size_t off = 0;
  while (off < buffer_.size()) {
    ssize_t n = ::write(fd_.get(), buffer_.data() + off, buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("spool write", errno);
    }
    off += static_cast<std::size_t>(n);
  }
  buffer_.clear();
  // Keep the write buffer's capacity small once the in-memory message has been written out.
  if (buffer_.capacity() > 2 * kWriteBuffer) buffer_.shrink_to_fit();
  return {};
}

Result<Input> Spool::finish(std::string name) {
  if (failed_) {
    Error e = *failed_;
    clear();
    return e;
  }
  if (!fd_) {
    Input in = Input::from_memory(std::move(buffer_), std::move(name));
    clear();
    return in;
  }
  if (auto st = flush(); !st) {
    clear();
    return std::move(st).error();
  }
  if (::lseek(fd_.get(), 0, SEEK_SET) < 0) {
    int err = errno;
    clear();
    return errno_error("spool seek", err);
  }
  Input in = Input::from_fd(std::move(fd_), size_, std::move(name));
  clear();
  return in;
}

void Spool::clear() {
  buffer_.clear();
  if (buffer_.capacity() > memory_limit_) buffer_.shrink_to_fit();
  fd_ = UniqueFd();
  size_ = 0;
  failed_.reset();
}

}  // namespace mailreport::lmtp
