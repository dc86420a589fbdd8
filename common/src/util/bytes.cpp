#include "mailreport/util/bytes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailreport {

namespace {
Error errno_error(std::string_view what) {
  return make_error(ErrorCode::Io, std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

Result<std::string> read_all(ByteSource& src, std::size_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = src.read(buf);
    if (!n) return std::move(n).error();
    if (*n == 0) return out;
    if (out.size() + *n > max_bytes) {
      return make_error(ErrorCode::LimitExceeded,
                        "input larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, *n);
  }
}

Result<std::size_t> MemorySource::read(std::span<char> buf) {
  std::size_t n = std::min(buf.size(), data_.size() - pos_);
  if (n == 0) return std::size_t{0};  // data_ may be an empty view with a null pointer
  std::memcpy(buf.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::size_t> FdSource::read(std::span<char> buf) {
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return errno_error("read");
  }
}

Input Input::from_memory(std::string data, std::string name) {
  Input in;
  in.size_ = data.size();
  in.data_ = std::move(data);
  in.name_ = std::move(name);
  return in;
}

Result<Input> Input::from_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error(path.string());
  UniqueFd owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error(path.string());
  if (!S_ISREG(st.st_mode)) return make_error(ErrorCode::Io, path.string() + ": not a regular file");
  return from_fd(std::move(owned), static_cast<std::uint64_t>(st.st_size), path.string());
}

Input Input::from_fd(UniqueFd fd, std::uint64_t size, std::string name) {
  Input in;
  in.fd_ = std::make_shared<UniqueFd>(std::move(fd));
  in.size_ = size;
  in.name_ = std::move(name);
  return in;
}

Result<UniqueFd> Input::dup_fd() const {
  if (!fd_) return make_error(ErrorCode::Io, name_ + ": not a file input");
  // Re-open through /proc so that each reader has its own file offset, even for an unlinked
  // spool file; fall back to dup + lseek when /proc is unavailable.
  std::string proc = "/proc/self/fd/" + std::to_string(fd_->get());
  int fd = ::open(proc.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fd = ::fcntl(fd_->get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return errno_error(name_);
    if (::lseek(fd, 0, SEEK_SET) < 0) {
      ::close(fd);
      return errno_error(name_);
    }
  }
  return UniqueFd(fd);
}

Result<std::unique_ptr<ByteSource>> Input::open() const {
  if (!fd_) return std::unique_ptr<ByteSource>(std::make_unique<MemorySource>(data_));
  auto fd = dup_fd();
  if (!fd) return std::move(fd).error();
  return std::unique_ptr<ByteSource>(std::make_unique<FdSource>(std::move(*fd)));
}

Result<std::string> Input::head(std::size_t max_bytes) const {
  if (!fd_) return data_.substr(0, max_bytes);
  auto src = open();
  if (!src) return std::move(src).error();
  std::string out(max_bytes, '\0');
  std::size_t got = 0;
  while (got < max_bytes) {
    auto n = (*src)->read(std::span<char>(out.data() + got, max_bytes - got));
    if (!n) return std::move(n).error();
    if (*n == 0) break;
    got += *n;
  }
  out.resize(got);
  return out;
}

}  // namespace mailreport
