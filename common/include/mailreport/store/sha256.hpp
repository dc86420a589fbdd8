// SHA-256 (FIPS 180-4) of byte streams, as stored with raw messages and used to derive report
// ids for ARF/DSN messages without a Message-ID. The digest is OpenSSL's (libcrypto, EVP);
// this is only an incremental wrapper.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace mailreport::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::string_view data);
  // Lower-case hex digest; the hasher cannot be updated afterwards.
  std::string hex();

  static std::string hex_of(std::string_view data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailreport::store
