// Streaming gzip decompression and compression: see gzip.hpp. zlib's headers stay in this file.
#include "report/gzip.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace mailreport::report::detail {

// Owns a z_stream set up for inflate; inflateEnd on destruction.
struct GzipSource::Inflater {
  z_stream zs{};
  bool ok = false;
  std::uint64_t consumed_before_reset = 0;  // total_in of finished members

  Inflater() {
    // 15 + 32: maximum window, and detect the gzip or zlib header automatically.
    ok = inflateInit2(&zs, 15 + 32) == Z_OK;
  }
  ~Inflater() {
    if (ok) inflateEnd(&zs);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

GzipSource::GzipSource(ByteSource& compressed, std::vector<std::string>* notes)
    : in_(compressed), notes_(notes), z_(std::make_unique<Inflater>()) {}

GzipSource::~GzipSource() = default;

std::uint64_t GzipSource::consumed() const noexcept {
  return z_->consumed_before_reset + z_->zs.total_in;
}

// Moves unconsumed input to the front of the buffer and reads more behind it.
Status GzipSource::refill() {
  z_stream& zs = z_->zs;
  std::size_t keep = zs.avail_in;
  if (keep > 0 && zs.next_in != reinterpret_cast<Bytef*>(buf_.data())) {
    std::memmove(buf_.data(), zs.next_in, keep);
  }
  zs.next_in = reinterpret_cast<Bytef*>(buf_.data());
  while (!input_eof_ && keep < buf_.size()) {
    auto n = in_.read(std::span<char>(buf_.data() + keep, buf_.size() - keep));
    if (!n) return std::move(n).error();
    if (*n == 0) {
      input_eof_ = true;
      break;
    }
    keep += *n;
    break;  // one read per refill keeps latency low
  }
  zs.avail_in = static_cast<uInt>(keep);
  return {};
}

Result<std::size_t> GzipSource::read(std::span<char> out) {
  if (done_ || out.empty()) return std::size_t{0};
  if (!z_->ok) return make_error(ErrorCode::Invalid, "gzip: cannot initialise zlib");
  z_stream& zs = z_->zs;
  for (;;) {
    if (zs.avail_in == 0 && !input_eof_) {
      if (auto s = refill(); !s) return std::move(s).error();
    }
    if (zs.avail_in == 0 && input_eof_) {
      if (members_ == 0 && zs.total_out == 0) {
        return make_error(ErrorCode::Invalid, "gzip: compressed data is truncated");
      }
      // Salvage: hand over what was decoded (the report parser notes an incomplete report).
      if (notes_) notes_->push_back("gzip: compressed data is truncated");
      done_ = true;
      return std::size_t{0};
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size(), 1u << 30));
    int rc = inflate(&zs, Z_NO_FLUSH);
    std::size_t produced = out.size() - zs.avail_out;
    if (rc == Z_STREAM_END) {
      ++members_;
      // RFC 1952 §2.2: a gzip file may hold several members; anything else after the
      // first member is trailing garbage, which real reporters send (ignored).
      if (zs.avail_in < 2 && !input_eof_) {
        if (auto s = refill(); !s) return std::move(s).error();
      }
      if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
        z_->consumed_before_reset += zs.total_in;
        inflateReset(&zs);
      } else {
        if (zs.avail_in > 0 && notes_) {
          notes_->push_back("gzip: ignored bytes after the end of the compressed stream");
        }
        done_ = true;
      }
      if (produced > 0 || done_) return produced;
      continue;
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      if (produced > 0) return produced;
      if (rc == Z_BUF_ERROR && zs.avail_in > 0) {
        return make_error(ErrorCode::Invalid, "gzip: decompression made no progress");
      }
      continue;  // needs more input
    }
    std::string why = zs.msg ? zs.msg : "error " + std::to_string(rc);
    return make_error(ErrorCode::Invalid, "gzip: invalid compressed data (" + why + ")");
  }
}

// Owns a z_stream set up for deflate; deflateEnd on destruction.
struct GzipWriter::Deflater {
  z_stream zs{};
  bool ok = false;
  explicit Deflater(int level) {
    // 15 + 16: maximum window, gzip wrapper (RFC 1952) instead of zlib's.
    ok = deflateInit2(&zs, std::clamp(level, 1, 9), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
         Z_OK;
  }
  ~Deflater() {
    if (ok) deflateEnd(&zs);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
};

GzipWriter::GzipWriter(int level) : z_(std::make_unique<Deflater>(level)) {}

GzipWriter::~GzipWriter() = default;

std::uint64_t GzipWriter::bytes_in() const noexcept {
  return z_->zs.total_in;
}

Status GzipWriter::pump(bool finish) {
  z_stream& zs = z_->zs;
  for (;;) {
    // out_[0, used_) holds the output; grow the room behind it geometrically (resizing
    // zero-fills, so not on every call).
    if (out_.size() - used_ < 1024) out_.resize(std::max<std::size_t>(out_.size() * 2, 16384));
    zs.next_out = reinterpret_cast<Bytef*>(out_.data() + used_);
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out_.size() - used_, 1u << 30));
    const uInt room = zs.avail_out;
    const int rc = deflate(&zs, finish ? Z_FINISH : Z_NO_FLUSH);
    used_ += room - zs.avail_out;
    if (rc == Z_STREAM_ERROR) return make_error(ErrorCode::Io, "gzip: deflate failed");
    if (finish ? rc == Z_STREAM_END : (zs.avail_in == 0 && zs.avail_out != 0)) return {};
  }
}

Status GzipWriter::write(std::string_view in) {
  if (!z_->ok) return make_error(ErrorCode::Io, "gzip: cannot initialise zlib");
  z_stream& zs = z_->zs;
  while (!in.empty()) {
    const std::size_t n = std::min<std::size_t>(in.size(), std::numeric_limits<uInt>::max() / 2);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(n);
    if (auto st = pump(false); !st) return st;
    in.remove_prefix(n);
  }
  return {};
}

Result<std::string> GzipWriter::finish() {
  if (!z_->ok) return make_error(ErrorCode::Io, "gzip: cannot initialise zlib");
  z_->zs.next_in = nullptr;
  z_->zs.avail_in = 0;
  if (auto st = pump(true); !st) return std::move(st).error();
  deflateReset(&z_->zs);
  std::string out(out_.data(), used_);
  used_ = 0;
  return out;
}

}  // namespace mailreport::report::detail
