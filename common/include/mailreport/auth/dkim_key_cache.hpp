// auth: a bounded cache of decoded DKIM public keys (RSA SubjectPublicKeyInfo, RFC 6376 §3.6.1
// p=), shared by every thread of a process that links DKIM verification. It sits behind
// libopendkim, which decodes the key of every signature itself with OpenSSL's d2i_PUBKEY_bio:
// see common/src/auth/dkim_key_cache.cpp for how and why. This header is only what tests and
// operators need to see of it: counters, a bound, and emptying it.
//
// Not cached: verdicts (every signature is still verified with RSA_verify), keys that do not
// decode, ed25519 keys (libopendkim builds those with EVP_PKEY_new_raw_public_key, which is
// cheap, and never calls d2i_PUBKEY_bio for them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mailreport::auth::dkim_key_cache {

struct Stats {
  std::uint64_t hits = 0;    // decodes answered from the cache
  std::uint64_t misses = 0;  // decodes done by OpenSSL (then cached when they succeeded)
  std::size_t size = 0;      // keys held now
  std::size_t capacity = 0;  // most keys held (least recently used go first)
};

Stats stats() noexcept;

// Bounds the cache (0 turns it off: every decode goes to OpenSSL); evicts at once if needed.
void set_capacity(std::size_t keys) noexcept;

// Drops every key and resets the counters (tests).
void clear() noexcept;

}  // namespace mailreport::auth::dkim_key_cache
