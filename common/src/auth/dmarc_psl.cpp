// The RFC 7489 §3.2 Organizational Domain from the public suffix list, with libpsl: the
// newer of its built-in list and the distribution's (Debian's publicsuffix package,
// /usr/share/publicsuffix), chosen by psl_latest(). The only file that includes libpsl.h.
// Not done: reloading the list while running (a restart picks up a new package).
#include <libpsl.h>

#include <stdexcept>

#include "dmarc_internal.hpp"

namespace mailreport::auth::dmarc_detail {

struct PublicSuffixList::Impl {
  struct Free {
    void operator()(psl_ctx_t* p) const noexcept { psl_free(p); }
  };
  std::unique_ptr<psl_ctx_t, Free> owned;  // from psl_latest()
  const psl_ctx_t* ctx = nullptr;          // owned.get(), or the static psl_builtin()
};

PublicSuffixList::PublicSuffixList() : impl_(std::make_unique<Impl>()) {
  impl_->owned.reset(psl_latest(nullptr));
  impl_->ctx = impl_->owned ? impl_->owned.get() : psl_builtin();
  // psl_suffix_count() is -1 for a DAFSA list; ask about a suffix that only a real list has
  // (with no data libpsl applies the "*" default rule and knows TLDs only).
  if (!impl_->ctx || !psl_is_public_suffix(impl_->ctx, "co.uk")) {
    throw std::runtime_error("libpsl has no public suffix list (install the publicsuffix package)");
  }
}

PublicSuffixList::~PublicSuffixList() = default;

std::string PublicSuffixList::organizational_domain(const std::string& normalized) const {
  // RFC 7489 §3.2: the longest public suffix plus one label. libpsl wants lower-case input,
  // which `normalized` is; A-labels match the list's punycode entries.
  const char* reg = psl_registrable_domain(impl_->ctx, normalized.c_str());
  // A public suffix itself has no registrable domain: it is its own Organizational Domain.
  return reg ? std::string(reg) : normalized;
}

}  // namespace mailreport::auth::dmarc_detail
