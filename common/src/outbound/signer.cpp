// outbound/signer: DKIM signing (RFC 6376 §5; rsa-sha256 §3.3, ed25519-sha256 RFC 8463) with
// libopendkim's signer: dkim_sign, dkim_header/dkim_eoh/dkim_body (or dkim_chunk for a whole
// message), dkim_eom, dkim_getsighdr_d. The private key file is read and checked here with
// OpenSSL (its type must match the algorithm; RSA keys of at least 1024 bits, RFC 8301 §3.2)
// and handed to libopendkim as PKCS#8 PEM text, as opendkim's milter hands it the KeyFile.
//
// libopendkim 2.11.0~beta2 (Debian 12) leaks on every ed25519-sha256 signature: dkim_free()
// releases the key material of a signing handle (struct dkim_crypto: the EVP_PKEY parsed from
// the PEM, the BIO over it, the signature buffer) only when the key type is RSA, so the parsed
// private key of each ed25519 signature stays in memory. We give each handle our own allocator
// (dkim_init's malloc/free hooks, with the handle's memory closure) and, when dkim_free() hands
// back a struct dkim_crypto that still owns key material, free that material ourselves (see
// HandleMemory). A libopendkim that frees it itself leaves nothing for us to do.
// It also mis-folds ed25519 signatures under simple header canonicalization (see open()):
// those are written unfolded.
//
// Not done: l= (body length), z= (copied headers), x= (expiry), oversigning, ARC.
#include "mailreport/outbound/signer.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>

// dkim.h is C99 and spells the boolean type _Bool, which C++ lacks (see auth/dkim.cpp).
#define _Bool bool  // NOLINT(bugprone-reserved-identifier)
extern "C" {
#include <opendkim/dkim.h>
}
#undef _Bool

namespace mailreport::outbound {

namespace {

constexpr std::string_view kFieldName = "DKIM-Signature";

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct DkimLibClose {
  void operator()(DKIM_LIB* l) const noexcept { dkim_close(l); }
};
struct DkimFree {
  void operator()(DKIM* d) const noexcept { dkim_free(d); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using DkimLibPtr = std::unique_ptr<DKIM_LIB, DkimLibClose>;

// The private key as PEM text, wiped when it goes (OPENSSL_cleanse: not optimised away).
class SecretText {
 public:
  SecretText() = default;
  explicit SecretText(std::string text) : text_(std::move(text)) {}
  SecretText(const SecretText&) = delete;
  SecretText& operator=(const SecretText&) = delete;
  ~SecretText() {
    if (!text_.empty()) OPENSSL_cleanse(text_.data(), text_.size());
  }
  const char* c_str() const noexcept { return text_.c_str(); }

 private:
  std::string text_;
};

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// ---------------------------------------------------------------- libopendkim's memory

// libopendkim's struct dkim_crypto (libopendkim/dkim-types.h, 2.11.0, OpenSSL build), which a
// signing handle allocates in dkim_privkey_load() through the handle's allocator.
struct DkimCryptoLayout {
  unsigned char crypto_pad;
  int crypto_keysize;
  std::size_t crypto_inlen;
  std::size_t crypto_outlen;
  EVP_PKEY* crypto_pkey;
  void* crypto_key;
  BIO* crypto_keydata;
  unsigned char* crypto_in;
  unsigned char* crypto_out;
};

// Every block libopendkim allocates for one signing handle (DKIM_MALLOC with the handle's
// closure), so that the ed25519 key material dkim_free() forgets can be recognised and freed,
// and anything else it forgets is freed when the handle goes.
class HandleMemory {
 public:
  HandleMemory() = default;
  HandleMemory(const HandleMemory&) = delete;
  HandleMemory& operator=(const HandleMemory&) = delete;
  ~HandleMemory() {
    for (auto& [p, size] : live_) {
      OPENSSL_cleanse(p, size);
      std::free(p);
    }
  }

  void* allocate(std::size_t n) {
    void* p = std::malloc(n);
    if (p == nullptr) return nullptr;
    try {
      live_.emplace(p, n);
    } catch (...) {
      std::free(p);
      throw;
    }
    return p;
  }

  // Blocks are wiped before they are freed: among them is libopendkim's copy of the private
  // key (dkim_sign strdups the PEM), which would otherwise linger in freed memory.
  void release(void* p) {
    auto it = live_.find(p);
    if (it != live_.end()) {
      if (it->second == sizeof(DkimCryptoLayout)) free_forgotten_key(p);
      it = live_.find(p);
      OPENSSL_cleanse(p, it->second);
      live_.erase(it);
    }
    std::free(p);
  }

 private:
  // `block` is being freed by dkim_free(). When it is a struct dkim_crypto of an ed25519
  // signature that still owns its key (dkim_free only clears those of RSA keys), free the
  // EVP_PKEY, the BIO and the signature buffer. The block is taken for one only when it is
  // unmistakably one: an Ed25519 key size (512 bits), a 64-octet signature buffer that is a
  // live block of this handle, and no RSA key.
  void free_forgotten_key(void* block) {
    DkimCryptoLayout c;
    std::memcpy(&c, block, sizeof c);
    if (c.crypto_keysize != 512 || c.crypto_outlen != 64 || c.crypto_key != nullptr ||
        c.crypto_out == nullptr) {
      return;
    }
    auto out = live_.find(c.crypto_out);
    if (out == live_.end() || out->second != 64) return;
    EVP_PKEY_free(c.crypto_pkey);
    BIO_free(c.crypto_keydata);
    OPENSSL_cleanse(c.crypto_out, 64);
    std::free(c.crypto_out);
    live_.erase(out);
    std::memset(block, 0, sizeof c);
  }

  std::unordered_map<void*, std::size_t> live_;
};

static_assert(sizeof(DkimCryptoLayout) == 64, "struct dkim_crypto of libopendkim 2.11 (LP64)");

// dkim_init's allocator hooks. The closure is the handle's HandleMemory, or null for the
// library's own allocations. They never throw (std::unordered_map may: then plain malloc).
extern "C" void* signer_malloc(void* closure, size_t n) {
  if (closure == nullptr) return std::malloc(n);
  try {
    return static_cast<HandleMemory*>(closure)->allocate(n);
  } catch (...) {
    return nullptr;
  }
}

extern "C" void signer_free(void* closure, void* p) {
  if (p == nullptr) return;
  if (closure == nullptr) {
    std::free(p);
    return;
  }
  static_cast<HandleMemory*>(closure)->release(p);
}

// ---------------------------------------------------------------- the signer

// libopendkim folds the field with bare "\n\t"; a message on the wire has CRLF.
std::string crlf_folds(const unsigned char* text, std::size_t n) {
  std::string out;
  out.reserve(n + 16);
  for (std::size_t i = 0; i < n; ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += static_cast<char>(text[i]);
  }
  return out;
}

// LF or CRLF line ends in, CRLF out.
std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

class LibSigner;

class LibSession final : public SigningSession {
 public:
  explicit LibSession(const LibSigner& signer);

  Status header(std::string_view name, std::string_view value) override {
    std::string field(name);
    field += ':';
    // Milters get the value without the space after the colon (Postfix strips it), and
    // folded lines joined by a bare "\n"; on the wire they are CRLF (as OpenDKIM's milter
    // rebuilds them), which matters to simple canonicalization.
    if (!value.empty() && value.front() != ' ' && value.front() != '\t') field += ' ';
    field += to_crlf(value);
    return field_text(std::move(field));
  }

  Status end_of_headers() override {
    if (!ready()) return *error_;
    return check(dkim_eoh(dkim_.get()), "dkim_eoh");
  }

  Status body(std::span<const char> chunk) override {
    if (!ready()) return *error_;
    if (chunk.empty()) return {};
    std::string copy(chunk.data(), chunk.size());  // dkim_body takes a non-const buffer
    return check(dkim_body(dkim_.get(), reinterpret_cast<unsigned char*>(copy.data()), copy.size()),
                 "dkim_body");
  }

  Result<std::string> finish() override;

  // A whole message (dkim_chunk parses the header fields; LF line ends become CRLF).
  Result<std::string> sign_whole(std::string_view message) {
    if (!ready()) return *error_;
    std::string copy(message);
    if (auto s = check(
            dkim_chunk(dkim_.get(), reinterpret_cast<unsigned char*>(copy.data()), copy.size()),
            "dkim_chunk");
        !s.ok()) {
      return std::move(s).error();
    }
    if (auto s = check(dkim_chunk(dkim_.get(), nullptr, 0), "dkim_chunk"); !s.ok()) {
      return std::move(s).error();
    }
    return finish();
  }

 private:
  Status field_text(std::string field) {
    if (!ready()) return *error_;
    return check(
        dkim_header(dkim_.get(), reinterpret_cast<unsigned char*>(field.data()), field.size()),
        "dkim_header");
  }

  bool ready() const noexcept { return dkim_ != nullptr && !error_.has_value(); }

  Status check(DKIM_STAT st, const char* what) {
    if (st == DKIM_STAT_OK) return {};
    const char* detail = dkim_ ? dkim_geterror(dkim_.get()) : nullptr;
    error_ = make_error(ErrorCode::Invalid,
                        id_ + ": " + what + " failed: " + dkim_getresultstr(st) +
                            (detail && *detail ? std::string(": ") + detail : std::string()));
    return *error_;
  }

  std::string id_;
  // Declared before dkim_: the handle's blocks must outlive dkim_free().
  std::unique_ptr<HandleMemory> memory_ = std::make_unique<HandleMemory>();
  std::unique_ptr<DKIM, DkimFree> dkim_;
  std::optional<Error> error_;
};

class LibSigner final : public DkimSigner {
 public:
  LibSigner(config::SignatureConfig settings, DkimLibPtr lib, std::string key_pem, dkim_alg_t alg,
            dkim_canon_t header_canon, dkim_canon_t body_canon)
      : settings_(std::move(settings)),
        lib_(std::move(lib)),
        key_pem_(std::move(key_pem)),
        alg_(alg),
        header_canon_(header_canon),
        body_canon_(body_canon) {}

  const config::SignatureConfig& settings() const noexcept override { return settings_; }

  std::unique_ptr<SigningSession> start() const override {
    return std::make_unique<LibSession>(*this);
  }

  // A new signing handle whose allocations go to `memory`; null with the error in `st`.
  DKIM* open(HandleMemory* memory, DKIM_STAT* st) const {
    const std::string id = "signature." + settings_.id;
    DKIM* d = dkim_sign(lib_.get(), reinterpret_cast<const unsigned char*>(id.c_str()), memory,
                        reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key_pem_.c_str())),
                        reinterpret_cast<const unsigned char*>(settings_.selector.c_str()),
                        reinterpret_cast<const unsigned char*>(settings_.domain.c_str()),
                        header_canon_, body_canon_, alg_, -1, st);
    // libopendkim folds the DKIM-Signature it hashes (b= still empty) and the one it returns
    // (b= filled) alike only for RSA: it foresees the wrap before a long b= from the RSA key
    // size alone (dkim_getsighdr_d, "forcewrap"). With an ed25519 key the two differ where
    // b= goes, which simple header canonicalization (RFC 6376 §3.4.1) does not forgive: such
    // signatures never verify. Unfolded, both are the same line.
    if (d != nullptr && alg_ == DKIM_SIGN_ED25519SHA256 && header_canon_ == DKIM_CANON_SIMPLE) {
      dkim_set_margin(d, 0);
    }
    return d;
  }

 private:
  config::SignatureConfig settings_;
  DkimLibPtr lib_;
  SecretText key_pem_;
  dkim_alg_t alg_;
  dkim_canon_t header_canon_;
  dkim_canon_t body_canon_;
};

LibSession::LibSession(const LibSigner& signer) : id_("signature." + signer.settings().id) {
  DKIM_STAT st = DKIM_STAT_OK;
  dkim_.reset(signer.open(memory_.get(), &st));
  if (!dkim_) {
    error_ = make_error(ErrorCode::Invalid,
                        id_ + ": dkim_sign failed: " + std::string(dkim_getresultstr(st)));
  }
}

Result<std::string> LibSession::finish() {
  if (!ready()) return *error_;
  if (auto s = check(dkim_eom(dkim_.get(), nullptr), "dkim_eom"); !s.ok()) {
    return std::move(s).error();
  }
  unsigned char* text = nullptr;
  std::size_t len = 0;
  if (auto s = check(dkim_getsighdr_d(dkim_.get(), kFieldName.size() + 2, &text, &len),
                     "dkim_getsighdr_d");
      !s.ok()) {
    return std::move(s).error();
  }
  std::string value = crlf_folds(text, len);
  error_ = make_error(ErrorCode::Invalid, id_ + ": the session is finished");
  return value;
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::Io, "cannot read " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::Io, "cannot read " + path.string());
  return text.str();
}

Result<std::pair<dkim_canon_t, dkim_canon_t>> canonicalization(std::string_view text) {
  const auto slash = text.find('/');
  const auto one = [](std::string_view s) -> std::optional<dkim_canon_t> {
    if (s == "simple") return DKIM_CANON_SIMPLE;
    if (s == "relaxed") return DKIM_CANON_RELAXED;
    return std::nullopt;
  };
  // RFC 6376 §3.5 c=: "header/body"; the body is "simple" when only one is given.
  auto h = one(text.substr(0, slash));
  auto b = slash == std::string_view::npos ? std::optional(DKIM_CANON_SIMPLE)
                                           : one(text.substr(slash + 1));
  if (!h || !b) {
    return make_error(ErrorCode::Invalid,
                      "canonicalization '" + std::string(text) + "' is not header/body");
  }
  return std::pair{*h, *b};
}

}  // namespace

Result<std::shared_ptr<const DkimSigner>> DkimSigner::load(const config::SignatureConfig& sig) {
  const std::string who = "signature." + sig.id;
  const auto fail = [&](ErrorCode code, const std::string& why) {
    return make_error(code, who + " (" + sig.private_key.string() + "): " + why);
  };
  const bool ed25519 = sig.algorithm == "ed25519-sha256";
  if (!ed25519 && sig.algorithm != "rsa-sha256") {
    return fail(ErrorCode::Invalid, "unknown algorithm '" + sig.algorithm + "'");
  }
  auto canon = canonicalization(sig.canonicalization);
  if (!canon.ok()) return fail(ErrorCode::Invalid, canon.error().message);

  auto file = read_file(sig.private_key);
  if (!file.ok()) return make_error(file.error().code, who + ": " + file.error().message);
  SecretText pem_in(std::move(file).value());
  BioPtr in(BIO_new_mem_buf(pem_in.c_str(), -1));
  if (!in) return fail(ErrorCode::Invalid, openssl_error());
  // PEM: PKCS#8 ("PRIVATE KEY") or traditional ("RSA PRIVATE KEY"); opendkim-genkey writes
  // the latter.
  PkeyPtr key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return fail(ErrorCode::Invalid,
                "not a PEM private key without a passphrase (" + openssl_error() + ")");
  }
  const int type = EVP_PKEY_get_base_id(key.get());
  if (ed25519 && type != EVP_PKEY_ED25519) {
    return fail(ErrorCode::Invalid, "algorithm is ed25519-sha256 but the key is not Ed25519");
  }
  if (!ed25519 && type != EVP_PKEY_RSA) {
    return fail(ErrorCode::Invalid, "algorithm is rsa-sha256 but the key is not RSA");
  }
  // RFC 8301 §3.2: verifiers MUST NOT accept RSA keys under 1024 bits (and we want 2048).
  if (!ed25519 && EVP_PKEY_get_bits(key.get()) < 1024) {
    return fail(ErrorCode::Invalid, "the RSA key has " +
                                        std::to_string(EVP_PKEY_get_bits(key.get())) +
                                        " bits; verifiers refuse keys under 1024 (RFC 8301)");
  }
  // Handed to libopendkim as PKCS#8 PEM whatever the file held.
  BioPtr out(BIO_new(BIO_s_secmem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return fail(ErrorCode::Invalid, openssl_error());
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(out.get(), &data);
  std::string pem(data, static_cast<std::size_t>(len));

  DkimLibPtr lib(dkim_init(signer_malloc, signer_free));
  if (!lib) return fail(ErrorCode::Invalid, "dkim_init failed");
  if (ed25519 && !dkim_libfeature(lib.get(), DKIM_FEATURE_ED25519)) {
    return fail(ErrorCode::Unsupported, "this libopendkim cannot sign ed25519-sha256");
  }
  // Bare LF line ends in sign(message) are taken as CRLF.
  unsigned int flags = 0;
  dkim_options(lib.get(), DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
  flags |= DKIM_LIBFLAGS_FIXCRLF;
  dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
  // h=: the configured fields that the message has (libopendkim adds From if it is missing
  // from the list: RFC 6376 §5.4 requires it).
  std::vector<const char*> names;
  for (const auto& h : sig.headers) names.push_back(h.c_str());
  names.push_back(nullptr);
  if (sig.headers.empty() || dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
                                          names.data(), sizeof(const char**)) != DKIM_STAT_OK) {
    return fail(ErrorCode::Invalid, "cannot set the signed header fields");
  }
  auto signer = std::make_shared<LibSigner>(sig, std::move(lib), std::move(pem),
                                            ed25519 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256,
                                            canon->first, canon->second);
  OPENSSL_cleanse(pem.data(), pem.size());
  return std::shared_ptr<const DkimSigner>(std::move(signer));
}

Result<std::string> DkimSigner::sign(std::string_view message) const {
  auto session = start();
  return static_cast<LibSession&>(*session).sign_whole(message);
}

Result<Signers> Signers::load(const config::Config& config) {
  Signers out;
  for (const auto& [id, sig] : config.signatures) {
    auto signer = DkimSigner::load(sig);
    if (!signer.ok()) return std::move(signer).error();
    out.by_id_.emplace(id, std::move(signer).value());
  }
  return out;
}

Result<std::vector<std::shared_ptr<const DkimSigner>>> Signers::get(
    const std::vector<std::string>& ids) const {
  std::vector<std::shared_ptr<const DkimSigner>> out;
  for (const auto& id : ids) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      return make_error(ErrorCode::NotFound, "no signature." + id + " is loaded");
    }
    out.push_back(it->second);
  }
  return out;
}

Result<std::string> Signers::sign(const std::vector<std::string>& ids,
                                  std::string_view message) const {
  auto signers = get(ids);
  if (!signers.ok()) return std::move(signers).error();
  std::string fields;
  for (const auto& signer : *signers) {
    auto value = signer->sign(message);
    if (!value.ok()) return std::move(value).error();
    fields += std::string(kFieldName) + ": " + *value + "\r\n";
  }
  return fields + to_crlf(message);
}

}  // namespace mailreport::outbound
