// auth: decoded DKIM public keys, cached, by interposing OpenSSL's d2i_PUBKEY_bio (see
// mailreport/auth/dkim_key_cache.hpp).
//
// Why: libopendkim 2.11 (dkim.c, dkim_sig_process) decodes the p= key of every RSA signature
// with d2i_PUBKEY_bio(BIO_new_mem_buf(key), NULL), then EVP_PKEY_get1_RSA, RSA_verify and
// EVP_PKEY_free. With OpenSSL 3 that decode builds a whole OSSL_DECODER context (provider
// look-ups, several candidate decoders) and EVP_PKEY_get1_RSA then makes a legacy RSA copy of
// the provider key: measured at about 60% of the milter's CPU per verified message. The key of
// a selector is the same bytes for every message it signs, so decoding it once is enough.
//
// Options weighed: libopendkim has no hook for it (its dkim_set_key_lookup callback returns the
// key record's text, not a decoded key, and the decode happens inside dkim_sig_process with no
// callback around it); the GnuTLS build of libopendkim is not what Debian ships; patching or
// rebuilding libopendkim is out (a given Debian package); caching whole verdicts would skip
// verification. What is left is to answer that one call: this file defines d2i_PUBKEY_bio, so
// in a process that links this object (dkim.cpp references it, so every program that verifies
// DKIM does) the dynamic linker binds libopendkim's call to ours (an executable's definition
// comes first in symbol look-up; an unversioned definition satisfies libopendkim's
// d2i_PUBKEY_bio@OPENSSL_3.0.0 reference). Programs that do not link it are untouched.
// Ours looks at the bytes of a memory BIO and returns the cached EVP_PKEY with one more
// reference (EVP_PKEY_up_ref), or calls OpenSSL's own function (dlvsym(RTLD_NEXT, ...)) and
// keeps what it decoded. The caller owns its reference exactly as before (libopendkim frees it
// with EVP_PKEY_free).
//
// Why sharing an EVP_PKEY is sound here: libopendkim only reads the key (EVP_PKEY_get1_RSA,
// RSA_size, RSA_verify). OpenSSL 3 documents EVP_PKEY objects as safe to use from several
// threads for read-only operations; the legacy RSA copy made by EVP_PKEY_get1_RSA is cached in
// the EVP_PKEY under its own lock (evp_pkey_get_legacy), and RSA's Montgomery context is set
// under the RSA's lock. Cache key = the exact DER bytes, compared in full (no hash is trusted):
// a different key (a rotated selector, an attacker's record) is a different entry, and a key
// is decoded by OpenSSL the first time it is seen. Every signature is still verified
// (RSA_verify runs per message). Keys that fail to decode are not kept, so garbage costs what
// it cost before and cannot fill the cache. Bounded (least recently used go first), one
// mutex (held only for a map look-up, never across OpenSSL's decode).
//
// Fallbacks to OpenSSL's function, uncached: a non-memory BIO (its bytes cannot be seen
// without consuming them), a caller that passes `a` (reuse of an EVP_PKEY), DER over 16 KiB.
// Ed25519 keys (RFC 8463) never come here: libopendkim builds them with
// EVP_PKEY_new_raw_public_key from the 32 raw bytes, which needs no decoder.
// Under ASan the interposition works as well (ASan does not intercept this function).
#include "mailreport/auth/dkim_key_cache.hpp"

#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <atomic>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mailreport::auth::dkim_key_cache {
namespace {

constexpr std::size_t kDefaultCapacity = 256;
constexpr long kMaxDer = 16 * 1024;  // an RSA-16384 SubjectPublicKeyInfo is ~2.1 KB

using D2iPubkeyBio = EVP_PKEY* (*)(BIO*, EVP_PKEY**);

D2iPubkeyBio real_d2i() noexcept {
  static const D2iPubkeyBio fn = [] {
    void* p = ::dlvsym(RTLD_NEXT, "d2i_PUBKEY_bio", "OPENSSL_3.0.0");
    if (p == nullptr) p = ::dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
    return reinterpret_cast<D2iPubkeyBio>(p);
  }();
  return fn;
}

struct PkeyRef {
  EVP_PKEY* key = nullptr;
  explicit PkeyRef(EVP_PKEY* k) noexcept : key(k) {}
  PkeyRef(const PkeyRef&) = delete;
  PkeyRef& operator=(const PkeyRef&) = delete;
  ~PkeyRef() { EVP_PKEY_free(key); }
};

class Cache {
 public:
  // A new reference to the key decoded from `der`, or nullptr; `consumed` gets how many bytes
  // OpenSSL's decode read from the BIO.
  EVP_PKEY* find(std::string_view der, std::size_t& consumed) {
    std::lock_guard lock(mu_);
    auto it = index_.find(der);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);  // most recently used first
    EVP_PKEY* k = it->second->key.key;
    if (EVP_PKEY_up_ref(k) != 1) return nullptr;
    consumed = it->second->consumed;
    hits_.fetch_add(1, std::memory_order_relaxed);
    return k;
  }

  // Keeps one reference of `key` (the caller's stays the caller's).
  void insert(std::string_view der, EVP_PKEY* key, std::size_t consumed) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    if (key == nullptr) return;
    std::lock_guard lock(mu_);
    if (capacity_ == 0 || index_.count(der) != 0) return;  // another thread was first
    if (EVP_PKEY_up_ref(key) != 1) return;
    lru_.emplace_front(std::string(der), key, consumed);
    index_.emplace(lru_.front().der, lru_.begin());
    trim();
  }

  void count_miss() noexcept { misses_.fetch_add(1, std::memory_order_relaxed); }

  bool enabled() {
    std::lock_guard lock(mu_);
    return capacity_ != 0;
  }

  Stats stats() {
    std::lock_guard lock(mu_);
    return {hits_.load(), misses_.load(), lru_.size(), capacity_};
  }

  void set_capacity(std::size_t n) {
    std::lock_guard lock(mu_);
    capacity_ = n;
    trim();
  }

  void clear() {
    std::list<Entry> gone;
    {
      std::lock_guard lock(mu_);
      index_.clear();
      gone.swap(lru_);
      hits_ = 0;
      misses_ = 0;
    }
  }

 private:
  struct Entry {
    Entry(std::string d, EVP_PKEY* k, std::size_t c) : der(std::move(d)), key(k), consumed(c) {}
    std::string der;
    PkeyRef key;
    std::size_t consumed;
  };

  void trim() {
    while (lru_.size() > capacity_) {
      index_.erase(lru_.back().der);
      lru_.pop_back();
    }
  }

  std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first; owns the DER bytes index_ points into
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
  std::size_t capacity_ = kDefaultCapacity;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
};

// Constructed on first use, i.e. after OpenSSL initialised itself (a BIO already exists), so it
// is destroyed before OpenSSL's atexit clean-up runs.
Cache& cache() {
  static Cache c;
  return c;
}

EVP_PKEY* decode(BIO* bp, EVP_PKEY** a) noexcept {
  D2iPubkeyBio real = real_d2i();
  if (real == nullptr) return nullptr;  // cannot happen with libcrypto linked
  std::string der;
  long len = 0;
  try {
    char* data = nullptr;
    if (a != nullptr || bp == nullptr || BIO_method_type(bp) != BIO_TYPE_MEM ||
        (len = BIO_get_mem_data(bp, &data)) <= 0 || len > kMaxDer || data == nullptr ||
        !cache().enabled()) {
      cache().count_miss();
      return real(bp, a);
    }
    std::size_t consumed = 0;
    if (EVP_PKEY* k =
            cache().find(std::string_view(data, static_cast<std::size_t>(len)), consumed)) {
      // Leave the BIO as OpenSSL's decode would have: the DER object read.
      std::vector<char> sink(consumed);
      if (consumed > 0) (void)BIO_read(bp, sink.data(), static_cast<int>(consumed));
      return k;
    }
    der.assign(data, static_cast<std::size_t>(len));  // the decode consumes the BIO
  } catch (...) {  // std::bad_alloc, a mutex error: decoding without the cache is still right
    return real(bp, a);
  }
  EVP_PKEY* k = real(bp, nullptr);
  try {
    const long left = BIO_pending(bp);
    const std::size_t used = left >= 0 && left <= len ? static_cast<std::size_t>(len - left) : 0;
    cache().insert(der, k, used);
  } catch (...) {  // not kept: the next message decodes it again
  }
  return k;
}

}  // namespace

Stats stats() noexcept {
  try {
    return cache().stats();
  } catch (...) {
    return {};
  }
}

void set_capacity(std::size_t keys) noexcept {
  try {
    cache().set_capacity(keys);
  } catch (...) {
  }
}

void clear() noexcept {
  try {
    cache().clear();
  } catch (...) {
  }
}

}  // namespace mailreport::auth::dkim_key_cache

// The interposed OpenSSL function (prototype from <openssl/x509.h>). Default visibility so that
// the linker exports it from the executable for libopendkim to bind to.
extern "C" __attribute__((visibility("default"))) EVP_PKEY* d2i_PUBKEY_bio(BIO* bp, EVP_PKEY** a) {
  return mailreport::auth::dkim_key_cache::decode(bp, a);
}
