// SHA-256 through GLib's GChecksum (GLib comes with GMime; see sha256.hpp).
#include "mailreport/store/sha256.hpp"

#include <glib.h>

#include <limits>

namespace mailreport::store {

namespace {
struct ChecksumFree {
  void operator()(GChecksum* c) const noexcept { g_checksum_free(c); }
};
}  // namespace

struct Sha256::Impl {
  std::unique_ptr<GChecksum, ChecksumFree> checksum{g_checksum_new(G_CHECKSUM_SHA256)};
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) {
  constexpr std::size_t kMax = static_cast<std::size_t>(std::numeric_limits<gssize>::max());
  while (!data.empty()) {
    std::size_t n = std::min(data.size(), kMax);
    g_checksum_update(impl_->checksum.get(), reinterpret_cast<const guchar*>(data.data()),
                      static_cast<gssize>(n));
    data.remove_prefix(n);
  }
}

std::string Sha256::hex() {
  return g_checksum_get_string(impl_->checksum.get());
}

std::string Sha256::hex_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

}  // namespace mailreport::store
