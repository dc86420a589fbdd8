// SPF verification (RFC 7208) with libspf2; the only file that includes libspf2's headers.
//
// libspf2 asks for DNS through an SPF_dns_server_t "layer". Ours (DnsLayer) answers every lookup
// from dns::Resolver and builds the SPF_dns_rr_t the way libspf2's own resolv layer does
// (spf_dns_resolv.c): herrno NETDB_SUCCESS / NO_DATA / HOST_NOT_FOUND / TRY_AGAIN, one
// malloc'ed SPF_dns_rr_data_t per record (SPF_dns_rr_buf_realloc), freed by libspf2.
// Queries for the obsolete SPF RR type (99) are answered NO_DATA without asking DNS
// (RFC 7208 §3.1: SPF records are published as TXT only; §14.1 deprecates type SPF).
//
// Two libspf2 1.2.10 defects are worked around here: a failed lookup of the SPF record itself
// leaves the result unset (we map it to temperror, RFC 7208 §4.4), and its macro compiler turns
// the spaces of an exp= text into '%' (the layer's get_exp hook fetches and expands the
// explanation itself).
//
// Not done here: see spf.hpp (void-lookup limit, loopback free ride).
#include "mailreport/auth/spf.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <utility>

extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
}

namespace mailreport::auth {
namespace {

struct ServerDeleter {
  void operator()(SPF_server_t* s) const noexcept { SPF_server_free(s); }
};
struct RequestDeleter {
  void operator()(SPF_request_t* r) const noexcept { SPF_request_free(r); }
};
struct ResponseDeleter {
  void operator()(SPF_response_t* r) const noexcept { SPF_response_free(r); }
};
struct RrDeleter {
  void operator()(SPF_dns_rr_t* r) const noexcept { SPF_dns_rr_free(r); }
};
using ServerPtr = std::unique_ptr<SPF_server_t, ServerDeleter>;
using RequestPtr = std::unique_ptr<SPF_request_t, RequestDeleter>;
using ResponsePtr = std::unique_ptr<SPF_response_t, ResponseDeleter>;
using RrPtr = std::unique_ptr<SPF_dns_rr_t, RrDeleter>;

// Copies `text` (NUL-terminated) into record `idx` of `rr`. False when out of memory.
bool put_string(SPF_dns_rr_t* rr, int idx, const std::string& text) {
  if (SPF_dns_rr_buf_realloc(rr, idx, text.size() + 1) != SPF_E_SUCCESS) return false;
  std::memcpy(rr->rr[idx]->txt, text.c_str(), text.size() + 1);
  return true;
}

// Fills `rr` with the records of `answer` for `type`. Returns the number stored, or -1 when out
// of memory.
int fill_records(SPF_dns_rr_t* rr, ns_type type, const dns::Answer& answer) {
  int n = 0;
  switch (type) {
    case ns_t_a:
    case ns_t_aaaa:
      for (const std::string& text : dns::addresses(answer)) {
        if (SPF_dns_rr_buf_realloc(rr, n, sizeof(SPF_dns_rr_data_t)) != SPF_E_SUCCESS) return -1;
        int af = type == ns_t_a ? AF_INET : AF_INET6;
        void* dst = type == ns_t_a ? static_cast<void*>(&rr->rr[n]->a)
                                   : static_cast<void*>(&rr->rr[n]->aaaa);
        if (inet_pton(af, text.c_str(), dst) == 1) ++n;
      }
      break;
    case ns_t_mx:
      for (const dns::Mx& mx : dns::mx_records(answer)) {
        // RFC 7505: a null MX ("." → "") names no host; there is nothing to look up.
        if (mx.exchange.empty()) continue;
        if (!put_string(rr, n, mx.exchange)) return -1;
        ++n;
      }
      break;
    case ns_t_txt:
      for (const std::string& text : dns::txt_records(answer)) {
        if (!put_string(rr, n, text)) return -1;
        ++n;
      }
      break;
    case ns_t_ptr:
      for (const std::string& name : dns::names(answer)) {
        if (!put_string(rr, n, name)) return -1;
        ++n;
      }
      break;
    default: break;
  }
  return n;
}

std::optional<dns::RType> rtype_of(ns_type type) {
  switch (type) {
    case ns_t_a: return dns::RType::A;
    case ns_t_aaaa: return dns::RType::AAAA;
    case ns_t_mx: return dns::RType::MX;
    case ns_t_txt: return dns::RType::TXT;
    case ns_t_ptr: return dns::RType::PTR;
    default: return std::nullopt;
  }
}

// RFC 7208 §4.3 (and §2.3 for HELO): check_host() answers "none" at once for a <domain> that
// is malformed or not a multi-label domain name; an address literal is not a domain name.
bool is_checkable_domain(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  if (d.empty() || d.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  while (start <= d.size()) {
    std::size_t dot = d.find('.', start);
    if (dot == std::string_view::npos) dot = d.size();
    std::size_t len = dot - start;
    if (len == 0 || len > 63) return false;
    for (char c : d.substr(start, len)) {
      auto u = static_cast<unsigned char>(c);
      // Printable ASCII except the characters that would change the macro or record syntax;
      // RFC 7208 §4.3 leaves room for non-LDH labels (e.g. "_spf"), so do not insist on LDH.
      if (u <= 0x20 || u >= 0x7f || c == '[' || c == ']' || c == '@' || c == '%') return false;
    }
    ++labels;
    start = dot + 1;
  }
  return labels >= 2;
}

// The request being evaluated on this thread, for the explanation hook (libspf2 hands it only
// the server). Set by RequestScope around each libspf2 call.
thread_local SPF_request_t* t_request = nullptr;

struct RequestScope {
  explicit RequestScope(SPF_request_t* r) noexcept { t_request = r; }
  ~RequestScope() { t_request = nullptr; }
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;
};

struct MacroDeleter {
  void operator()(SPF_macro_t* m) const noexcept { SPF_macro_free(m); }
};

// Makes *bufp an empty string (libspf2 owns the buffer, malloc'ed).
SPF_errcode_t empty_text(char** bufp, size_t* buflenp) {
  if (*bufp == nullptr || *buflenp < 1) {
    void* p = std::realloc(*bufp, 1);
    if (p == nullptr) return SPF_E_NO_MEMORY;
    *bufp = static_cast<char*>(p);
    *buflenp = 1;
  }
  (*bufp)[0] = '\0';
  return SPF_E_SUCCESS;
}

}  // namespace

// The DNS layer handed to libspf2; base.hook points back to it.
struct DnsLayer {
  SPF_dns_server_t base{};
  std::shared_ptr<dns::Resolver> resolver;
  Logger* log = nullptr;

  static SPF_dns_rr_t* lookup(SPF_dns_server_t* server, const char* domain, ns_type type,
                              int /*should_cache*/) noexcept {
    // Never let an exception cross into libspf2; a NULL return means "out of memory" to it
    // (it aborts), so every other failure is a TRY_AGAIN record.
    try {
      auto* self = static_cast<DnsLayer*>(server->hook);
      return self->answer(domain != nullptr ? domain : "", type);
    } catch (...) {
      return SPF_dns_rr_new_init(server, domain, type, 0, TRY_AGAIN);
    }
  }

  // RFC 7208 §6.2 exp=: the explanation is the one TXT record at the (expanded) exp domain,
  // with macros expanded. We fetch and expand it ourselves because libspf2 1.2.10's macro
  // compiler mangles the spaces of an explanation ("a b" → "a%b"); "%_" is the macro-string
  // escape for a space (RFC 7208 §7.1), so spaces are turned into it before compiling.
  // Any problem → no explanation, as §6.2 says. `domain` may alias *bufp.
  static SPF_errcode_t get_exp(SPF_server_t* server, const char* domain, char** bufp,
                               size_t* buflenp) noexcept {
    try {
      auto* self = static_cast<DnsLayer*>(server->resolver->hook);
      std::string name(domain != nullptr ? domain : "");
      dns::Answer a = self->resolver->query(name, dns::RType::TXT);
      std::vector<std::string> txt = dns::txt_records(a);
      if (txt.size() != 1 || t_request == nullptr) return empty_text(bufp, buflenp);
      std::string escaped;
      for (char c : txt.front()) {
        if (c == ' ') {
          escaped += "%_";
        } else {
          escaped += c;
        }
      }
      ResponsePtr scratch(SPF_response_new(t_request));
      if (!scratch) return SPF_E_NO_MEMORY;
      SPF_macro_t* raw = nullptr;
      SPF_errcode_t err = SPF_record_compile_macro(server, scratch.get(), &raw, escaped.c_str());
      std::unique_ptr<SPF_macro_t, MacroDeleter> macro(raw);
      if (err != SPF_E_SUCCESS || !macro) return empty_text(bufp, buflenp);
      // The compiled data follows the SPF_macro_t header (spf_internal.h, SPF_macro_data).
      auto* data =
          reinterpret_cast<SPF_data_t*>(reinterpret_cast<char*>(macro.get()) + sizeof(SPF_macro_t));
      err = SPF_record_expand_data(server, t_request, scratch.get(), data, macro->macro_len, bufp,
                                   buflenp);
      if (err != SPF_E_SUCCESS) return empty_text(bufp, buflenp);
      return SPF_E_SUCCESS;
    } catch (...) {
      return SPF_E_INTERNAL_ERROR;
    }
  }

  SPF_dns_rr_t* answer(const char* domain, ns_type type) {
    std::optional<dns::RType> rtype = rtype_of(type);
    if (!rtype) {
      // RFC 7208 §3.1: type SPF (99) is not used; any other type libspf2 may ask is not one
      // SPF needs. Answer "no data" without a query.
      return SPF_dns_rr_new_init(&base, domain, type, 0, NO_DATA);
    }
    dns::Answer a = resolver->query(domain, *rtype);
    switch (a.status) {
      case dns::Status::NxDomain:
        return SPF_dns_rr_new_init(&base, domain, type, static_cast<int>(a.ttl), HOST_NOT_FOUND);
      case dns::Status::NoData:
        return SPF_dns_rr_new_init(&base, domain, type, static_cast<int>(a.ttl), NO_DATA);
      case dns::Status::TempError:
        log->debug(domain,
                   std::string("SPF DNS ") + dns::to_string(*rtype) + " temporary error: " + a.why);
        return SPF_dns_rr_new_init(&base, domain, type, 0, TRY_AGAIN);
      case dns::Status::Ok: break;
    }
    RrPtr rr(SPF_dns_rr_new_init(&base, domain, type, static_cast<int>(a.ttl), NETDB_SUCCESS));
    if (!rr) return nullptr;
    int n = fill_records(rr.get(), type, a);
    if (n < 0) return nullptr;
    rr->num_rr = n;
    if (n == 0) rr->herrno = NO_DATA;  // as spf_dns_resolv.c: records that did not decode
    return rr.release();
  }
};

struct SpfVerifier::Impl {
  DnsLayer dns;
  ServerPtr server;
  std::string receiver;
  Logger* log = nullptr;

  SpfVerdict run(std::string_view client_ip, std::string_view helo, SpfScope scope,
                 std::string_view mail_from) const;
};

namespace {

SpfResult map_result(SPF_result_t r) {
  switch (r) {
    case SPF_RESULT_PASS: return SpfResult::Pass;
    case SPF_RESULT_FAIL: return SpfResult::Fail;
    case SPF_RESULT_SOFTFAIL: return SpfResult::SoftFail;
    case SPF_RESULT_NEUTRAL: return SpfResult::Neutral;
    case SPF_RESULT_NONE: return SpfResult::None;
    case SPF_RESULT_TEMPERROR: return SpfResult::TempError;
    case SPF_RESULT_PERMERROR: return SpfResult::PermError;
    case SPF_RESULT_INVALID: break;
  }
  // libspf2 documents SPF_RESULT_INVALID as "should never return this".
  return SpfResult::PermError;
}

std::string text_or_empty(const char* s) {
  return s != nullptr ? std::string(s) : std::string();
}

// Sets the client address on `req`; an IPv4-mapped IPv6 address is checked as IPv4
// (RFC 7208 §5.6: "ip4" matches the IPv4 address a mapped address carries).
bool set_client(SPF_request_t* req, std::string_view client_ip) {
  std::string ip(client_ip);
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  if (ip.rfind("IPv6:", 0) == 0) ip = ip.substr(5);
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) return SPF_request_set_ipv4(req, v4) == 0;
  in6_addr v6{};
  if (inet_pton(AF_INET6, ip.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4.s_addr, &v6.s6_addr[12], 4);
    return SPF_request_set_ipv4(req, v4) == 0;
  }
  return SPF_request_set_ipv6(req, v6) == 0;
}

}  // namespace

SpfVerdict SpfVerifier::Impl::run(std::string_view client_ip, std::string_view helo, SpfScope scope,
                                  std::string_view mail_from) const {
  SpfVerdict v;
  v.scope = scope;
  std::string helo_s(helo);
  if (!helo_s.empty() && helo_s.back() == '.') helo_s.pop_back();
  std::string sender;  // the identity as libspf2 sees it: local@domain
  if (scope == SpfScope::Helo) {
    v.domain = helo_s;
    v.identity = helo_s;
    sender = "postmaster@" + helo_s;  // RFC 7208 §4.3: no local-part → "postmaster"
  } else if (mail_from.empty()) {
    // RFC 7208 §2.4: with the null reverse-path the MAIL FROM identity is postmaster@HELO.
    v.domain = helo_s;
    v.identity = "postmaster@" + helo_s;
    sender = v.identity;
  } else {
    std::size_t at = mail_from.rfind('@');
    v.domain = std::string(at == std::string_view::npos ? mail_from : mail_from.substr(at + 1));
    if (!v.domain.empty() && v.domain.back() == '.') v.domain.pop_back();
    v.identity = std::string(mail_from);
    sender =
        at == std::string_view::npos || at == 0 ? "postmaster@" + v.domain : std::string(mail_from);
  }

  if (!is_checkable_domain(v.domain)) {
    // RFC 7208 §2.3 (HELO must be a multi-label domain name to be checked) and §4.3.
    v.result = SpfResult::None;
    v.explanation = "'" + v.domain + "' is not a multi-label domain name; no SPF check";
    return v;
  }

  RequestPtr req(SPF_request_new(server.get()));
  if (!req) {
    v.result = SpfResult::TempError;
    v.explanation = "out of memory";
    return v;
  }
  if (!set_client(req.get(), client_ip)) {
    v.result = SpfResult::None;
    v.explanation = "no usable client IP address ('" + std::string(client_ip) + "')";
    return v;
  }
  if (SPF_request_set_helo_dom(req.get(), helo_s.c_str()) != SPF_E_SUCCESS ||
      SPF_request_set_env_from(req.get(), sender.c_str()) != SPF_E_SUCCESS) {
    v.result = SpfResult::TempError;
    v.explanation = "out of memory";
    return v;
  }
  // use_helo makes libspf2 evaluate <domain> = the HELO name (SPF_request_prepare).
  req->use_helo = scope == SpfScope::Helo ? 1 : 0;

  SPF_response_t* raw = nullptr;
  SPF_errcode_t err;
  {
    RequestScope scope_guard(req.get());
    err = SPF_request_query_mailfrom(req.get(), &raw);
  }
  ResponsePtr resp(raw);
  if (!resp) {
    v.result = SpfResult::TempError;
    v.explanation = "out of memory";
    return v;
  }
  SPF_result_t r = SPF_response_result(resp.get());
  v.explanation = text_or_empty(SPF_response_get_header_comment(resp.get()));
  if (r == SPF_RESULT_INVALID) {
    // libspf2 1.2.10 leaves the result unset when the record lookup itself fails
    // (SPF_server_get_record: TRY_AGAIN / NO_RECOVERY return only an error code). Our DNS layer
    // reports every resolver failure as TRY_AGAIN: RFC 7208 §4.4 → temperror.
    v.result = err == SPF_E_DNS_ERROR ? SpfResult::TempError : SpfResult::PermError;
    v.explanation =
        receiver + ": " +
        (v.result == SpfResult::TempError
             ? "temporary DNS error looking up the SPF record of " + v.domain
             : "error evaluating the SPF record of " + v.domain + ": " + SPF_strerror(err));
  } else {
    v.result = map_result(r);
  }
  if (v.result == SpfResult::Fail) {
    // RFC 7208 §6.2: the domain's exp= text, only for "fail". We set libspf2's default
    // explanation to nothing, so a non-empty text is the domain's own.
    std::string exp = text_or_empty(SPF_response_get_explanation(resp.get()));
    if (!exp.empty()) v.explanation += "; explanation: " + exp;
  }
  if (r != SPF_RESULT_INVALID &&
      (v.result == SpfResult::PermError || v.result == SpfResult::TempError ||
       v.result == SpfResult::None)) {
    // libspf2's messages say what was wrong ("Multiple SPF records", lookup limits, ...).
    for (int i = 0; i < SPF_response_messages(resp.get()); ++i) {
      SPF_error_t* e = SPF_response_message(resp.get(), i);
      if (e != nullptr && SPF_error_errorp(e) && SPF_error_message(e) != nullptr) {
        v.explanation += std::string("; ") + SPF_error_message(e);
      }
    }
  }
  return v;
}

SpfVerifier::SpfVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SpfVerifier::~SpfVerifier() = default;

Result<std::shared_ptr<SpfVerifier>> SpfVerifier::create(std::shared_ptr<dns::Resolver> resolver,
                                                         std::string receiver_host, Logger& log) {
  if (!resolver) return make_error(ErrorCode::Invalid, "SPF: no DNS resolver");
  if (receiver_host.empty()) return make_error(ErrorCode::Invalid, "SPF: empty receiver host");
  // libspf2 prints "info" lines to stdout (SPF_info_stdio); a daemon's stdout is no place for
  // them. Warnings stay on stderr. This is libspf2's process-wide handler, set once.
  static const bool handlers_set = [] {
    SPF_info_handler = nullptr;
    SPF_debug_handler = nullptr;
    return true;
  }();
  (void)handlers_set;

  auto impl = std::make_unique<Impl>();
  impl->log = &log;
  impl->receiver = std::move(receiver_host);
  impl->dns.resolver = std::move(resolver);
  impl->dns.log = &log;
  SPF_dns_server_t& layer = impl->dns.base;
  layer.destroy = nullptr;  // ours: libspf2 must never free it (SPF_dns_free skips NULL)
  layer.lookup = &DnsLayer::lookup;
  layer.get_spf = nullptr;  // libspf2's SPF_server_get_record does record selection
  layer.get_exp = &DnsLayer::get_exp;
  layer.add_cache = nullptr;
  layer.layer_below = nullptr;
  layer.name = "mailreport";
  layer.debug = 0;
  layer.hook = &impl->dns;

  impl->server.reset(SPF_server_new_dns(&layer, 0));
  if (!impl->server) return make_error(ErrorCode::Invalid, "SPF: SPF_server_new_dns failed");
  if (SPF_server_set_rec_dom(impl->server.get(), impl->receiver.c_str()) != SPF_E_SUCCESS) {
    return make_error(ErrorCode::Invalid, "SPF: cannot set receiver name");
  }
  // Explanations end up in header comments: keep them to printable ASCII.
  SPF_server_set_sanitize(impl->server.get(), 1);
  // No default explanation: only a domain's own exp= text is reported (RFC 7208 §6.2).
  SPF_response_t* raw = nullptr;
  SPF_errcode_t err = SPF_server_set_explanation(impl->server.get(), "", &raw);
  ResponsePtr resp(raw);
  if (err != SPF_E_SUCCESS) {
    return make_error(ErrorCode::Invalid,
                      std::string("SPF: cannot set explanation: ") + SPF_strerror(err));
  }
  return std::shared_ptr<SpfVerifier>(new SpfVerifier(std::move(impl)));
}

std::vector<SpfVerdict> SpfVerifier::check(std::string_view client_ip, std::string_view helo,
                                           std::string_view mail_from) const {
  std::vector<SpfVerdict> out;
  out.reserve(2);
  out.push_back(check_mail_from(client_ip, helo, mail_from));
  out.push_back(check_helo(client_ip, helo));
  return out;
}

SpfVerdict SpfVerifier::check_mail_from(std::string_view client_ip, std::string_view helo,
                                        std::string_view mail_from) const {
  return impl_->run(client_ip, helo, SpfScope::MailFrom, mail_from);
}

SpfVerdict SpfVerifier::check_helo(std::string_view client_ip, std::string_view helo) const {
  return impl_->run(client_ip, helo, SpfScope::Helo, {});
}

}  // namespace mailreport::auth
