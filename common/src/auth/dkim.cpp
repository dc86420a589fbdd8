// DKIM verification (RFC 6376, RFC 8463, RFC 8301) with libopendkim; the only file of the
// auth module that includes libopendkim's header.
//
// DNS: libopendkim's resolver hooks (dkim_dns_set_query_start / _waitreply / _cancel) are
// answered from dns::Resolver with the reply in wire format (Answer::packet), which
// libopendkim parses itself (dkim-keys.c). The resolver blocks, so "start" does the whole
// query and "waitreply" hands the result over. NXDOMAIN and NODATA replies carry their packet;
// a resolver TempError becomes DKIM_DNS_ERROR, which libopendkim reports as
// DKIM_SIGERROR_KEYFAIL (→ temperror). libopendkim's own resolver is never initialised
// (dkim_dns_set_init / _close are cleared).
//
// Decoded RSA keys are cached across messages (not verdicts): see dkim_key_cache.cpp.
//
// Failure reports (RFC 6651, RFC 6591): each verdict says whether the signature has r=y and,
// for a fail, the Auth-Failure word. DKIM-Canonicalized-Header/Body are not produced:
// libopendkim only hands them out as temporary files (DKIM_LIBFLAGS_TMPFILES|KEEPFILES with
// dkim_sig_getreportinfo), a library-wide flag that would write files for every message, r=y
// or not, which the milter's per-message cost cannot carry.
//
// Result mapping and what is not done: see dkim.hpp.
#include "mailreport/auth/dkim.hpp"
#include "mailreport/auth/dkim_key_cache.hpp"

#include <strings.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <utility>

// dkim.h is C99 and spells the boolean type _Bool, which C++ lacks; C's _Bool and C++'s bool
// share size and ABI on every platform GCC supports.
#define _Bool bool  // NOLINT(bugprone-reserved-identifier)
extern "C" {
#include <opendkim/dkim.h>
}
#undef _Bool

namespace mailreport::auth {
namespace {

struct LibDeleter {
  void operator()(DKIM_LIB* lib) const noexcept { dkim_close(lib); }
};
struct DkimDeleter {
  void operator()(DKIM* d) const noexcept { dkim_free(d); }
};
using LibPtr = std::unique_ptr<DKIM_LIB, LibDeleter>;
using DkimPtr = std::unique_ptr<DKIM, DkimDeleter>;

// RFC 8301 §3.2: RSA keys under 1024 bits MUST NOT be considered valid (libopendkim exempts
// ed25519 keys from this limit).
constexpr unsigned int kMinRsaKeyBits = 1024;

constexpr int kTypeTxt = 16;  // RFC 1035 §3.2.2

// One query's outcome, between query_start and query_cancel.
struct Query {
  int status = DKIM_DNS_ERROR;
  std::size_t length = 0;
  int dnssec = DKIM_DNSSEC_UNKNOWN;
};

bool is_ascii_printable_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u < 127 && c != ':';
  });
}

// libopendkim's prototypes take tag names as non-const u_char*; it does not write to them.
u_char* tag(const char* name) {
  return reinterpret_cast<u_char*>(const_cast<char*>(name));
}

std::string c_str_or_empty(const unsigned char* s) {
  return s != nullptr ? std::string(reinterpret_cast<const char*>(s)) : std::string();
}

}  // namespace

struct DkimVerifier::Impl {
  std::shared_ptr<dns::Resolver> resolver;
  Logger* log = nullptr;
  LibPtr lib;
  bool ed25519 = false;

  // libopendkim DNS hooks. `srv` is this Impl (dkim_dns_set_query_service). They never throw.
  static int query_start(void* srv, int type, unsigned char* name, unsigned char* buf,
                         std::size_t buflen, void** qh) noexcept;
  static int query_wait(void* srv, void* qh, struct timeval* timeout, std::size_t* bytes,
                        int* error, int* dnssec) noexcept;
  static int query_cancel(void* srv, void* qh) noexcept;
};

int DkimVerifier::Impl::query_start(void* srv, int type, unsigned char* name, unsigned char* buf,
                                    std::size_t buflen, void** qh) noexcept {
  try {
    auto* self = static_cast<Impl*>(srv);
    auto q = std::make_unique<Query>();
    const char* qname = reinterpret_cast<const char*>(name);
    if (type != kTypeTxt) {
      // libopendkim asks only for TXT (keys, ATPS, reputation); nothing else is wired.
      self->log->warning(qname, "DKIM: DNS query of unsupported type " + std::to_string(type));
      return DKIM_DNS_INVALID;
    }
    dns::Answer a = self->resolver->query(qname, dns::RType::TXT);
    if (a.status == dns::Status::TempError || a.packet.empty()) {
      self->log->debug(qname, "DKIM key lookup: temporary DNS error: " + a.why);
      q->status = DKIM_DNS_ERROR;
    } else if (a.packet.size() > buflen) {
      self->log->warning(qname, "DKIM key lookup: reply of " + std::to_string(a.packet.size()) +
                                    " bytes exceeds libopendkim's buffer");
      q->status = DKIM_DNS_ERROR;
    } else {
      std::memcpy(buf, a.packet.data(), a.packet.size());
      q->length = a.packet.size();
      q->status = DKIM_DNS_SUCCESS;
      q->dnssec = a.secure ? DKIM_DNSSEC_SECURE : DKIM_DNSSEC_UNKNOWN;
    }
    *qh = q.release();
    return DKIM_DNS_SUCCESS;
  } catch (...) {
    return DKIM_DNS_ERROR;
  }
}

int DkimVerifier::Impl::query_wait(void* /*srv*/, void* qh, struct timeval* /*timeout*/,
                                   std::size_t* bytes, int* error, int* dnssec) noexcept {
  if (qh == nullptr) return DKIM_DNS_INVALID;
  const auto* q = static_cast<const Query*>(qh);
  if (bytes != nullptr) *bytes = q->length;
  if (error != nullptr) *error = 0;
  if (dnssec != nullptr) *dnssec = q->dnssec;
  return q->status;
}

int DkimVerifier::Impl::query_cancel(void* /*srv*/, void* qh) noexcept {
  delete static_cast<Query*>(qh);
  return DKIM_DNS_SUCCESS;
}

struct DkimVerification::Impl {
  std::shared_ptr<const DkimVerifier::Impl> verifier;
  std::string job_id;  // libopendkim keeps a pointer to it
  bool leading_space_kept = false;
  DkimPtr dkim;
  enum class State { Headers, Body, Unsigned, Done } state = State::Headers;
  std::size_t signature_headers = 0;  // DKIM-Signature fields seen, for when the library fails
  std::string failure;                // why libopendkim could not go on (empty: it could)
  std::string field;                  // scratch for the rebuilt header field

  void fail(const char* step, DKIM_STAT status) {
    if (!failure.empty()) return;
    failure = std::string(step) + ": " + dkim_getresultstr(status);
    const char* detail = dkim ? dkim_geterror(dkim.get()) : nullptr;
    if (detail != nullptr && *detail != '\0') failure += std::string(" (") + detail + ")";
    verifier->log->warning(job_id, "DKIM: " + failure);
  }

  DkimVerdict verdict(DKIM_SIGINFO* sig, bool eom_ok) const;
};

namespace {

// Words for reason= / human_result (RFC 8601 §2.7.1, RFC 7489 App. C).
std::string sigerror_words(int err) {
  switch (err) {
    case DKIM_SIGERROR_EXPIRED: return "signature expired";
    case DKIM_SIGERROR_FUTURE: return "signature timestamp in the future";
    case DKIM_SIGERROR_NOKEY: return "no key";
    case DKIM_SIGERROR_KEYFAIL: return "key lookup failed";
    case DKIM_SIGERROR_KEYREVOKED: return "key revoked";
    case DKIM_SIGERROR_MULTIREPLY: return "several key records";
    case DKIM_SIGERROR_DNSSYNTAX:
    case DKIM_SIGERROR_KEYVERSION:
    case DKIM_SIGERROR_KEYUNKNOWNHASH:
    case DKIM_SIGERROR_KEYHASHMISMATCH:
    case DKIM_SIGERROR_NOTEMAILKEY:
    case DKIM_SIGERROR_KEYTYPEMISSING:
    case DKIM_SIGERROR_KEYTYPEUNKNOWN:
    case DKIM_SIGERROR_KEYDECODE: {
      const char* s = dkim_sig_geterrorstr(err);
      return std::string("key syntax: ") + (s != nullptr ? s : "unusable key record");
    }
    case DKIM_SIGERROR_SUBDOMAIN: return "identity not allowed by the key (t=s)";
    case DKIM_SIGERROR_BADSIG: return "signature did not verify";
    default: {
      const char* s = dkim_sig_geterrorstr(err);
      return std::string("signature syntax: ") + (s != nullptr ? s : "unknown error");
    }
  }
}

}  // namespace

DkimVerdict DkimVerification::Impl::verdict(DKIM_SIGINFO* sig, bool eom_ok) const {
  DkimVerdict v;
  v.domain = c_str_or_empty(dkim_sig_getdomain(sig));
  if (v.domain.empty()) v.domain = c_str_or_empty(dkim_sig_gettagvalue(sig, false, tag("d")));
  v.selector = c_str_or_empty(dkim_sig_getselector(sig));
  if (v.selector.empty()) {
    v.selector = c_str_or_empty(dkim_sig_gettagvalue(sig, false, tag("s")));
  }
  unsigned char ident[1024] = {};
  if (dkim_sig_getidentity(dkim.get(), sig, ident, sizeof ident - 1) == DKIM_STAT_OK) {
    v.identity = reinterpret_cast<const char*>(ident);
  }
  // a= as written in the signature (libopendkim's name is only set for algorithms it knows).
  v.algorithm = c_str_or_empty(dkim_sig_gettagvalue(sig, false, tag("a")));
  char b[512] = {};
  std::size_t blen = sizeof b - 1;
  if (dkim_get_sigsubstring(dkim.get(), sig, b, &blen) == DKIM_STAT_OK) {
    v.header_b.assign(b, std::min(blen, sizeof b - 1));
  }

  const unsigned int flags = dkim_sig_getflags(sig);
  const int err = dkim_sig_geterror(sig);
  const int bh = dkim_sig_getbh(sig);
  v.testing = (flags & DKIM_SIGFLAG_TESTKEY) != 0;
  // RFC 6651 §3.1: r=y asks verifiers for failure reports (sig-r-tag, "y" in either case).
  if (const unsigned char* r = dkim_sig_gettagvalue(sig, false, tag("r")); r != nullptr) {
    v.report_requested = (r[0] == 'y' || r[0] == 'Y') && r[1] == '\0';
  }
  const bool passed = (flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH &&
                      (err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_UNKNOWN);

  if (passed) {
    v.result = DkimResult::Pass;
  } else if (bh == DKIM_SIGBH_MISMATCH) {
    // RFC 6376 §6.1.3: the body hash did not match → PERMFAIL (body hash did not verify).
    // RFC 6591 §3.2.2 Auth-Failure values for the failure reports (auth/failure.cpp also reads
    // these reasons to pick the RFC 6651 rr= class: keep them in step).
    v.result = DkimResult::Fail;
    v.reason = "body hash mismatch";
    v.auth_failure = "bodyhash";
  } else if (err == DKIM_SIGERROR_BADSIG) {
    v.result = DkimResult::Fail;
    v.reason = "signature did not verify";
    v.auth_failure = "signature";
  } else if (err == DKIM_SIGERROR_KEYREVOKED) {
    // RFC 6376 §6.1.2 step 7: an empty p= means the key was revoked; "treat this as a failed
    // signature check".
    v.result = DkimResult::Fail;
    v.reason = "key revoked";
    v.auth_failure = "revoked";
  } else if (err == DKIM_SIGERROR_KEYFAIL) {
    // RFC 6376 §6.1.2 step 2: the key query failed for a temporary reason → TEMPFAIL.
    v.result = DkimResult::TempError;
    v.reason = "key lookup failed (temporary DNS error)";
  } else if (err == DKIM_SIGERROR_KEYTOOSMALL) {
    // RFC 8301 §3.2; RFC 8601 §2.7.1 "policy": verified but not acceptable to this ADMD.
    unsigned int bits = 0;
    (void)dkim_sig_getkeysize(sig, &bits);
    v.result = DkimResult::Policy;
    v.reason = "key too small (" + std::to_string(bits) + " bits)";
  } else if (err == DKIM_SIGERROR_UNKNOWN && (flags & DKIM_SIGFLAG_PROCESSED) == 0) {
    // Not evaluated: libopendkim stopped (resources) or the signature was skipped.
    v.result = eom_ok ? DkimResult::Neutral : DkimResult::TempError;
    v.reason = failure.empty() ? "signature not evaluated" : "not evaluated: " + failure;
  } else {
    // RFC 6376 §6.1.1, §6.1.2: unusable signature or key record, expired signature, no key
    // (NXDOMAIN: step 3) → PERMFAIL; RFC 8601 §2.7.1 "permerror".
    v.result = DkimResult::PermError;
    v.reason = sigerror_words(err);
  }

  dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
  (void)dkim_sig_getsignalg(sig, &alg);
  if (alg == DKIM_SIGN_RSASHA1) {
    // RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying; such signatures "have
    // permanently failed evaluation" (RFC 6376 §6.1 PERMFAIL).
    v.reason =
        "rsa-sha1 not accepted (RFC 8301); " +
        (v.result == DkimResult::Pass ? std::string("the signature itself verified") : v.reason);
    v.result = DkimResult::PermError;
  }
  if (v.testing) {
    v.reason += v.reason.empty() ? "testing key (t=y)" : "; testing key (t=y)";
  }
  return v;
}

DkimVerification::DkimVerification(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DkimVerification::~DkimVerification() = default;

Status DkimVerification::header(std::string_view name, std::string_view value) {
  Impl& m = *impl_;
  if (m.state != Impl::State::Headers) {
    return make_error(ErrorCode::Invalid, "DKIM: header after end of headers");
  }
  if (!is_ascii_printable_name(name)) {
    return make_error(ErrorCode::Invalid, "DKIM: header field name is not printable ASCII");
  }
  const bool is_signature =
      name.size() == 14 && ::strncasecmp(name.data(), "DKIM-Signature", 14) == 0;
  if (is_signature) ++m.signature_headers;
  if (!m.dkim || !m.failure.empty()) return {};

  // Rebuild the field as OpenDKIM's milter does (opendkim.c, mlfi_eoh): name ":" [" "] value,
  // bare LF in folded values turned into CRLF.
  m.field.assign(name);
  m.field += ':';
  if (!m.leading_space_kept) m.field += ' ';
  // Copied in runs between line feeds (most values have none).
  std::size_t from = 0;
  for (std::size_t lf = value.find('\n'); lf != std::string_view::npos;
       lf = value.find('\n', lf + 1)) {
    m.field.append(value.substr(from, lf - from));
    if (lf == 0 || value[lf - 1] != '\r') m.field += '\r';
    from = lf;
  }
  m.field.append(value.substr(from));
  DKIM_STAT st =
      dkim_header(m.dkim.get(), reinterpret_cast<u_char*>(m.field.data()), m.field.size());
  if (st == DKIM_STAT_OK) return {};
  if (st == DKIM_STAT_SYNTAX) {
    // A DKIM-Signature libopendkim could not parse is kept as a bad signature (it gets a
    // permerror verdict); any other field it refused is simply not available for signing.
    if (is_signature) return {};
    return make_error(ErrorCode::Invalid, "DKIM: header field refused: " + std::string(name));
  }
  m.fail("dkim_header", st);
  return make_error(ErrorCode::Temporary, "DKIM: " + m.failure);
}

Status DkimVerification::end_of_headers() {
  Impl& m = *impl_;
  if (m.state != Impl::State::Headers) return make_error(ErrorCode::Invalid, "DKIM: eoh twice");
  m.state = Impl::State::Body;
  if (!m.dkim || !m.failure.empty()) return {};
  // Key lookups happen here (libopendkim processes signatures at end of headers).
  DKIM_STAT st = dkim_eoh(m.dkim.get());
  if (st == DKIM_STAT_OK) return {};
  if (st == DKIM_STAT_NOSIG) {
    m.state = Impl::State::Unsigned;
    return {};
  }
  m.fail("dkim_eoh", st);
  return make_error(ErrorCode::Temporary, "DKIM: " + m.failure);
}

Status DkimVerification::body(std::span<const char> chunk) {
  Impl& m = *impl_;
  if (m.state == Impl::State::Headers) {
    Status s = end_of_headers();
    if (!s) return s;
  }
  if (m.state != Impl::State::Body || !m.dkim || !m.failure.empty() || chunk.empty()) return {};
  // dkim_body does not write through the pointer; its prototype is not const.
  auto* p = reinterpret_cast<u_char*>(const_cast<char*>(chunk.data()));
  DKIM_STAT st = dkim_body(m.dkim.get(), p, chunk.size());
  if (st == DKIM_STAT_OK) return {};
  m.fail("dkim_body", st);
  return make_error(ErrorCode::Temporary, "DKIM: " + m.failure);
}

std::vector<DkimVerdict> DkimVerification::finish() {
  Impl& m = *impl_;
  if (m.state == Impl::State::Headers) (void)end_of_headers();
  std::vector<DkimVerdict> out;
  if (m.state == Impl::State::Done || m.signature_headers == 0) {
    m.state = Impl::State::Done;
    return out;
  }
  if (m.state == Impl::State::Unsigned) {
    // DKIM-Signature fields that libopendkim did not take for signatures at all: still one
    // verdict each (RFC 6376 §6.1.1: an unusable signature is PERMFAIL).
    m.state = Impl::State::Done;
    for (std::size_t i = 0; i < m.signature_headers; ++i) {
      DkimVerdict v;
      v.result = DkimResult::PermError;
      v.reason = "signature syntax: not a DKIM signature";
      out.push_back(std::move(v));
    }
    return out;
  }
  m.state = Impl::State::Done;

  bool eom_ok = false;
  DKIM_SIGINFO** sigs = nullptr;
  int nsigs = 0;
  if (m.dkim && m.failure.empty()) {
    bool testkey = false;
    DKIM_STAT st = dkim_eom(m.dkim.get(), &testkey);
    // BADSIG, NOKEY, CANTVRFY, REVOKED, KEYFAIL, NOSIG describe the signatures, each of which
    // we read below; anything else means libopendkim could not finish.
    eom_ok = st == DKIM_STAT_OK || st == DKIM_STAT_BADSIG || st == DKIM_STAT_NOKEY ||
             st == DKIM_STAT_CANTVRFY || st == DKIM_STAT_REVOKED || st == DKIM_STAT_KEYFAIL ||
             st == DKIM_STAT_NOSIG || st == DKIM_STAT_SYNTAX || st == DKIM_STAT_MULTIDNSREPLY;
    if (!eom_ok) m.fail("dkim_eom", st);
    if (dkim_getsiglist(m.dkim.get(), &sigs, &nsigs) != DKIM_STAT_OK) nsigs = 0;
  }
  if (nsigs > 0) {
    out.reserve(static_cast<std::size_t>(nsigs));
    for (int i = 0; i < nsigs; ++i) out.push_back(m.verdict(sigs[i], eom_ok));
    return out;
  }
  // libopendkim could not tell us about the signatures: one temperror per DKIM-Signature so
  // that the count stays right and nothing reads as a pass or a permanent failure.
  for (std::size_t i = 0; i < m.signature_headers; ++i) {
    DkimVerdict v;
    v.result = DkimResult::TempError;
    v.reason = m.failure.empty() ? "signature not evaluated" : "not evaluated: " + m.failure;
    out.push_back(std::move(v));
  }
  return out;
}

DkimVerifier::DkimVerifier(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
DkimVerifier::~DkimVerifier() = default;

Result<std::shared_ptr<DkimVerifier>> DkimVerifier::create(std::shared_ptr<dns::Resolver> resolver,
                                                           Logger& log) {
  if (!resolver) return make_error(ErrorCode::Invalid, "DKIM: no DNS resolver");
  auto impl = std::make_shared<Impl>();
  impl->resolver = std::move(resolver);
  impl->log = &log;
  // libopendkim decodes each RSA key with d2i_PUBKEY_bio, answered by dkim_key_cache.cpp; this
  // reference is what links that object (and so the interposition) into every DKIM verifier.
  (void)dkim_key_cache::stats();
  impl->lib.reset(dkim_init(nullptr, nullptr));
  if (!impl->lib) return make_error(ErrorCode::Invalid, "DKIM: dkim_init failed");
  DKIM_LIB* lib = impl->lib.get();

  // Keep libopendkim's own resolver out: no res_init, and dkim_close must not "close" ours.
  dkim_dns_set_init(lib, nullptr);
  dkim_dns_set_close(lib, nullptr);
  dkim_dns_set_nslist(lib, nullptr);
  dkim_dns_set_config(lib, nullptr);
  dkim_dns_set_trustanchor(lib, nullptr);
  (void)dkim_dns_set_query_service(lib, impl.get());
  dkim_dns_set_query_start(lib, &Impl::query_start);
  dkim_dns_set_query_waitreply(lib, &Impl::query_wait);
  dkim_dns_set_query_cancel(lib, &Impl::query_cancel);

  // BADSIGHANDLES: malformed DKIM-Signature fields stay in the signature list, so every field
  // gets a verdict. No VERIFYONE: every signature is verified (DMARC needs each d=).
  unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
  unsigned int min_bits = kMinRsaKeyBits;
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK ||
      dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &min_bits, sizeof min_bits) !=
          DKIM_STAT_OK) {
    return make_error(ErrorCode::Invalid, "DKIM: dkim_options failed");
  }
  impl->ed25519 = dkim_libfeature(lib, DKIM_FEATURE_ED25519);
  if (!impl->ed25519) {
    log.warning("dkim", "libopendkim was built without ed25519-sha256 (RFC 8463) support");
  }
  return std::shared_ptr<DkimVerifier>(new DkimVerifier(std::move(impl)));
}

std::unique_ptr<DkimVerification> DkimVerifier::start(std::string_view job_id,
                                                      bool header_leading_space_kept) const {
  auto m = std::make_unique<DkimVerification::Impl>();
  m->verifier = impl_;
  m->job_id = std::string(job_id);
  m->leading_space_kept = header_leading_space_kept;
  DKIM_STAT st = DKIM_STAT_OK;
  m->dkim.reset(dkim_verify(impl_->lib.get(), reinterpret_cast<const u_char*>(m->job_id.c_str()),
                            nullptr, &st));
  if (!m->dkim) m->fail("dkim_verify", st);
  return std::make_unique<DkimVerification>(std::move(m));
}

bool DkimVerifier::supports_ed25519() const noexcept {
  return impl_->ed25519;
}

}  // namespace mailreport::auth
