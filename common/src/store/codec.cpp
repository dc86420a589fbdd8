// zlib streams for raw message storage (see codec.hpp).
#include "store/codec.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace mailreport::store {

namespace {
constexpr std::size_t kMaxZInput = std::numeric_limits<uInt>::max() / 2;
// Raw deflate (RFC 1951, negative window bits): the row's SHA-256 already guards the bytes,
// so the zlib wrapper's Adler-32 would be computed for nothing (~2% of ingest time).
constexpr int kRawDeflateWindowBits = -15;

Error zerror(const char* what, int rc, const z_stream& z) {
  return make_error(ErrorCode::Store,
                    std::string(what) + ": " + (z.msg != nullptr ? z.msg : zError(rc)));
}
}  // namespace

struct Deflater::Impl {
  z_stream z{};
  bool ok = false;
  ~Impl() {
    if (ok) deflateEnd(&z);
  }
};

Deflater::Deflater(int level, std::size_t chunk_size)
    : impl_(std::make_unique<Impl>()), buf_(std::max<std::size_t>(chunk_size, 4096), '\0') {
  level = std::clamp(level, 1, 9);
  impl_->ok = deflateInit2(&impl_->z, level, Z_DEFLATED, kRawDeflateWindowBits, 8,
                           Z_DEFAULT_STRATEGY) == Z_OK;
}

Deflater::~Deflater() = default;

Status Deflater::pump(int flush, const ChunkSink& out) {
  z_stream& z = impl_->z;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf_.data() + used_);
    z.avail_out = static_cast<uInt>(buf_.size() - used_);
    int rc = deflate(&z, flush);
    if (rc == Z_STREAM_ERROR) return zerror("deflate", rc, z);
    std::size_t produced = buf_.size() - used_ - z.avail_out;
    used_ += produced;
    total_out_ += produced;
    if (used_ == buf_.size()) {
      if (auto st = out(std::string_view(buf_.data(), used_)); !st) return st;
      used_ = 0;
      continue;  // the buffer was full: there may be more output
    }
    if (flush == Z_FINISH) {
      if (rc == Z_STREAM_END) return {};
      continue;
    }
    if (z.avail_in == 0) return {};
  }
}

Status Deflater::write(std::string_view in, const ChunkSink& out) {
  if (!impl_->ok) return make_error(ErrorCode::Store, "deflateInit failed");
  while (!in.empty()) {
    std::size_t n = std::min(in.size(), kMaxZInput);
    impl_->z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    impl_->z.avail_in = static_cast<uInt>(n);
    if (auto st = pump(Z_NO_FLUSH, out); !st) return st;
    in.remove_prefix(n);
  }
  return {};
}

Status Deflater::finish(const ChunkSink& out) {
  if (!impl_->ok) return make_error(ErrorCode::Store, "deflateInit failed");
  impl_->z.next_in = nullptr;
  impl_->z.avail_in = 0;
  if (auto st = pump(Z_FINISH, out); !st) return st;
  if (used_ > 0) {
    if (auto st = out(std::string_view(buf_.data(), used_)); !st) return st;
    used_ = 0;
  }
  return {};
}

struct Inflater::Impl {
  z_stream z{};
  bool ok = false;
  ~Impl() {
    if (ok) inflateEnd(&z);
  }
};

Inflater::Inflater() : impl_(std::make_unique<Impl>()) {
  impl_->ok = inflateInit2(&impl_->z, kRawDeflateWindowBits) == Z_OK;
}

Inflater::~Inflater() = default;

Status Inflater::write(std::string_view in, const ChunkSink& out) {
  if (!impl_->ok) return make_error(ErrorCode::Store, "inflateInit failed");
  z_stream& z = impl_->z;
  char buf[65536];
  while (!in.empty()) {
    if (ended_) return make_error(ErrorCode::Store, "stored message: data after the end");
    std::size_t n = std::min(in.size(), kMaxZInput);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        return zerror("stored message: inflate", rc, z);
      }
      std::size_t produced = sizeof buf - z.avail_out;
      if (produced > 0) {
        if (auto st = out(std::string_view(buf, produced)); !st) return st;
      }
      if (rc == Z_STREAM_END) {
        ended_ = true;
        if (z.avail_in != 0)
          return make_error(ErrorCode::Store, "stored message: data after the end");
        break;
      }
      if (rc == Z_BUF_ERROR && produced == 0) break;
    } while (z.avail_in > 0 || z.avail_out == 0);
    in.remove_prefix(n);
  }
  return {};
}

Status Inflater::finish() const {
  if (!ended_) return make_error(ErrorCode::Store, "stored message is truncated");
  return {};
}

}  // namespace mailreport::store
