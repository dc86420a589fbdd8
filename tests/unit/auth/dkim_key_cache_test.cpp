// Tests of the decoded DKIM key cache (common/src/auth/dkim_key_cache.cpp), which answers
// OpenSSL's d2i_PUBKEY_bio for libopendkim: the same DER bytes give the same key object with
// one more reference, the BIO is read as OpenSSL reads it, keys that do not decode are not kept,
// the bound holds, and verification through libopendkim still fails for a key that did not sign
// (the cache holds keys, never verdicts) while repeated verifications hit the cache.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dkim_test_keys.hpp"
#include "mailreport/auth/dkim.hpp"
#include "mailreport/auth/dkim_key_cache.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth {
namespace {

using test::dkim::PkeyPtr;
using test::dkim::TestKey;

std::string der_of(const TestKey& k) {
  unsigned char* out = nullptr;
  int n = i2d_PUBKEY(k.pkey.get(), &out);
  EXPECT_GT(n, 0);
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

// As libopendkim does it (dkim.c, dkim_sig_process).
PkeyPtr decode(const std::string& der, std::size_t* left = nullptr) {
  std::unique_ptr<BIO, test::dkim::BioFree> bio(
      BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
  PkeyPtr k(d2i_PUBKEY_bio(bio.get(), nullptr));
  if (left != nullptr) *left = static_cast<std::size_t>(BIO_pending(bio.get()));
  return k;
}

class DkimKeyCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { dkim_key_cache::clear(); }
  void TearDown() override {
    dkim_key_cache::set_capacity(256);
    dkim_key_cache::clear();
  }
  static const TestKey& key_a() {
    static const TestKey k = test::dkim::make_key(false);
    return k;
  }
  static const TestKey& key_b() {
    static const TestKey k = test::dkim::make_key(false);
    return k;
  }
};

TEST_F(DkimKeyCacheTest, SameBytesGiveTheSameKeyWithItsOwnReference) {
  const std::string der = der_of(key_a());
  std::size_t left1 = 99, left2 = 99;
  PkeyPtr k1 = decode(der, &left1);
  PkeyPtr k2 = decode(der, &left2);
  ASSERT_TRUE(k1);
  ASSERT_TRUE(k2);
  EXPECT_EQ(k1.get(), k2.get());
  EXPECT_EQ(EVP_PKEY_eq(k1.get(), key_a().pkey.get()), 1);
  // Both decodes read the whole DER object from the BIO, hit or miss.
  EXPECT_EQ(left1, 0u);
  EXPECT_EQ(left2, 0u);
  auto s = dkim_key_cache::stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.size, 1u);
  // Each caller owns a reference: freeing one leaves the other (and the cache's) usable.
  k1.reset();
  EXPECT_EQ(EVP_PKEY_get_bits(k2.get()), 2048);
  k2.reset();
  PkeyPtr k3 = decode(der);
  ASSERT_TRUE(k3);
  EXPECT_EQ(EVP_PKEY_eq(k3.get(), key_a().pkey.get()), 1);
}

TEST_F(DkimKeyCacheTest, DifferentKeysAreDifferentEntries) {
  PkeyPtr a = decode(der_of(key_a()));
  PkeyPtr b = decode(der_of(key_b()));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(EVP_PKEY_eq(b.get(), key_b().pkey.get()), 1);
  EXPECT_NE(EVP_PKEY_eq(a.get(), b.get()), 1);
  EXPECT_EQ(dkim_key_cache::stats().size, 2u);
}

TEST_F(DkimKeyCacheTest, GarbageIsNotKept) {
  std::string der = der_of(key_a());
  der[der.size() / 2] ^= 0x5a;
  der.resize(der.size() - 7);  // truncated: cannot decode
  EXPECT_FALSE(decode(der));
  EXPECT_FALSE(decode(der));
  auto s = dkim_key_cache::stats();
  EXPECT_EQ(s.size, 0u);
  EXPECT_EQ(s.hits, 0u);
  EXPECT_EQ(s.misses, 2u);
}

TEST_F(DkimKeyCacheTest, BoundHoldsAndZeroTurnsItOff) {
  dkim_key_cache::set_capacity(1);
  PkeyPtr a = decode(der_of(key_a()));
  PkeyPtr b = decode(der_of(key_b()));
  EXPECT_EQ(dkim_key_cache::stats().size, 1u);
  PkeyPtr a2 = decode(der_of(key_a()));  // evicted: decoded again
  EXPECT_NE(a.get(), a2.get());
  EXPECT_EQ(EVP_PKEY_eq(a.get(), a2.get()), 1);
  dkim_key_cache::set_capacity(0);
  EXPECT_EQ(dkim_key_cache::stats().size, 0u);
  PkeyPtr a3 = decode(der_of(key_a()));
  ASSERT_TRUE(a3);
  EXPECT_EQ(dkim_key_cache::stats().size, 0u);
}

// Through libopendkim: the interposition is what it calls, and a key that did not sign still
// fails after the signing key (same selector bytes aside) sits in the cache.
TEST_F(DkimKeyCacheTest, VerificationStillChecksEverySignature) {
  dns::ResolverOptions o;
  o.local_only = true;
  o.local_data = {test::dkim::txt_line("a._domainkey.example.com", key_a().record()),
                  test::dkim::txt_line("b._domainkey.example.com", key_b().record())};
  o.timeout = std::chrono::milliseconds(1000);
  NullLogger log;
  auto r = dns::make_unbound_resolver(o, log);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  auto v = DkimVerifier::create(*r, log);
  ASSERT_TRUE(v.ok()) << v.error().describe();

  auto run = [&](const char* selector) {
    test::dkim::TestMessage m = test::dkim::sample_message();
    test::dkim::SignOptions so;
    so.selector = selector;
    so.domain = "example.com";
    m.prepend("DKIM-Signature", test::dkim::sign(m, key_a(), so));  // always signed by A
    auto ver = (*v)->start("job");
    for (const auto& [name, value] : m.headers) EXPECT_TRUE(ver->header(name, value).ok());
    EXPECT_TRUE(ver->end_of_headers().ok());
    EXPECT_TRUE(ver->body(m.body).ok());
    auto verdicts = ver->finish();
    EXPECT_EQ(verdicts.size(), 1u);
    return verdicts.empty() ? DkimResult::None : verdicts[0].result;
  };
  EXPECT_EQ(run("a"), DkimResult::Pass);
  EXPECT_EQ(run("a"), DkimResult::Pass);
  EXPECT_EQ(dkim_key_cache::stats().hits, 1u);  // libopendkim's decode came to the cache
  // Selector b publishes key B: A's signature must not verify, on the first and later tries.
  EXPECT_EQ(run("b"), DkimResult::Fail);
  EXPECT_EQ(run("b"), DkimResult::Fail);
  EXPECT_EQ(run("a"), DkimResult::Pass);
  auto s = dkim_key_cache::stats();
  EXPECT_EQ(s.size, 2u);
  EXPECT_EQ(s.hits, 3u);
}

}  // namespace
}  // namespace mailreport::auth
