// mbox splitting with GMime (GMIME_FORMAT_MBOX) and file slices (see mbox_util.hpp).
#include "commands/mbox_util.hpp"

#include <fcntl.h>
#include <gmime/gmime.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "mailreport/mime/header.hpp"

namespace mailreport::cli {

namespace {

struct GObjectUnref {
  void operator()(gpointer p) const noexcept {
    if (p != nullptr) g_object_unref(p);
  }
};
template <class T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

Error io_error(const std::string& what) {
  return make_error(ErrorCode::Io, what + ": " + std::strerror(errno));
}

}  // namespace

bool looks_like_mbox(const Input& input) {
  auto head = input.head(5);
  return head && *head == "From ";
}

Result<std::vector<ByteRange>> split_mbox(const std::filesystem::path& path) {
  mime::ensure_initialized();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error(path.string());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return io_error(path.string());
  }
  GPtr<GMimeStream> stream(g_mime_stream_fs_new(fd));  // owns fd from here
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MBOX);
  std::vector<ByteRange> ranges;
  while (!g_mime_parser_eos(parser.get())) {
    GPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
    if (!message) break;
    auto marker = g_mime_parser_get_mbox_marker_offset(parser.get());
    auto begin = g_mime_parser_get_headers_begin(parser.get());
    if (!ranges.empty() && marker >= 0) ranges.back().end = static_cast<std::uint64_t>(marker);
    if (begin < 0) continue;
    ranges.push_back({static_cast<std::uint64_t>(begin), static_cast<std::uint64_t>(st.st_size)});
  }
  if (ranges.empty()) {
    return make_error(ErrorCode::Invalid, path.string() + ": no message in this mbox file");
  }
  return ranges;
}

Result<Input> slice_file(const std::filesystem::path& path, ByteRange range, std::string name,
                         const std::filesystem::path& temp_dir, std::uint64_t memory_limit) {
  auto file = Input::from_file(path);
  if (!file) return std::move(file).error();
  auto fd = file->dup_fd();
  if (!fd) return std::move(fd).error();
  const std::uint64_t size = range.end > range.begin ? range.end - range.begin : 0;
  UniqueFd out;
  std::string data;
  if (size > memory_limit) {
    int t = ::open(temp_dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (t < 0) return io_error(temp_dir.string());
    out = UniqueFd(t);
  } else {
    data.reserve(size);
  }
  char buf[65536];
  std::uint64_t done = 0;
  while (done < size) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof buf, size - done));
    ssize_t n = ::pread(fd->get(), buf, want, static_cast<off_t>(range.begin + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(path.string());
    if (n == 0) break;  // the file shrank
    if (out) {
      for (ssize_t w = 0; w < n;) {
        ssize_t m = ::write(out.get(), buf + w, static_cast<std::size_t>(n - w));
        if (m < 0 && errno == EINTR) continue;
        if (m < 0) return io_error("temporary file");
        w += m;
      }
    } else {
      data.append(buf, static_cast<std::size_t>(n));
    }
    done += static_cast<std::uint64_t>(n);
  }
  if (out) return Input::from_fd(std::move(out), done, std::move(name));
  return Input::from_memory(std::move(data), std::move(name));
}

}  // namespace mailreport::cli
