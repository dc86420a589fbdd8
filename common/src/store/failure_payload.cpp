// store/failure_payload: a queued failure report's payload as JSON (nlohmann-json), see
// mailreport/store/failure_payload.hpp.
//
// Layout: {"version": 1, "evaluation": {...}, "request": {...}}; enums by their report
// spelling (to_string), so the payload reads well in `mailreport outbox --json` and survives a
// reordering of the enums. Text that is not valid UTF-8 (the reported message's header block,
// DKIM canonicalized data, anything copied from the message) is kept byte for byte as
// {"base64": "..."} (JSON strings are UTF-8 only). Reading ignores unknown members and gives
// missing ones their defaults, so payloads queued by an older or newer build still load.
#include "mailreport/store/failure_payload.hpp"

#include <glib.h>
#include <openssl/evp.h>

#include <array>
#include <nlohmann/json.hpp>

namespace mailreport::store {

namespace {

using nlohmann::json;

// --------------------------------------------------------------- bytes that may not be UTF-8

// RFC 3629 well-formed UTF-8 without NUL (GLib's check): such text is a JSON string as it is.
bool is_utf8(std::string_view s) {
  return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr);
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * (text.size() / 4), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's zero bytes; take them off.
  std::size_t len = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

json text(std::string_view s) {
  if (is_utf8(s)) return std::string(s);
  return json{{"base64", base64_encode(s)}};
}

std::string get_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object()) {
    auto it = j.find("base64");
    if (it != j.end() && it->is_string()) {
      if (auto bytes = base64_decode(it->get_ref<const std::string&>())) return *bytes;
    }
  }
  return {};
}

// --------------------------------------------------------------- members

const json* member(const json& o, const char* name) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(name);
  return it == o.end() ? nullptr : &*it;
}

std::string str(const json& o, const char* name) {
  const json* m = member(o, name);
  return m ? get_text(*m) : std::string();
}

template <class T>
T num(const json& o, const char* name, T fallback = {}) {
  const json* m = member(o, name);
  if (!m || !m->is_number()) return fallback;
  return m->get<T>();
}

bool boolean(const json& o, const char* name, bool fallback = false) {
  const json* m = member(o, name);
  return m && m->is_boolean() ? m->get<bool>() : fallback;
}

json texts(const std::vector<std::string>& v) {
  json a = json::array();
  for (const auto& s : v) a.push_back(text(s));
  return a;
}

std::vector<std::string> get_texts(const json& o, const char* name) {
  std::vector<std::string> out;
  const json* m = member(o, name);
  if (m && m->is_array()) {
    for (const auto& e : *m) out.push_back(get_text(e));
  }
  return out;
}

// An enum from its to_string spelling; `fallback` for an unknown one.
template <class E, std::size_t N>
E enum_of(const json& o, const char* name, const std::array<E, N>& values, E fallback) {
  std::string s = str(o, name);
  for (E v : values) {
    if (s == to_string(v)) return v;
  }
  return fallback;
}

using auth::to_string;

constexpr std::array kSpfResults{auth::SpfResult::None,     auth::SpfResult::Neutral,
                                 auth::SpfResult::Pass,     auth::SpfResult::Fail,
                                 auth::SpfResult::SoftFail, auth::SpfResult::TempError,
                                 auth::SpfResult::PermError};
constexpr std::array kDkimResults{auth::DkimResult::None,     auth::DkimResult::Pass,
                                  auth::DkimResult::Fail,     auth::DkimResult::Policy,
                                  auth::DkimResult::Neutral,  auth::DkimResult::TempError,
                                  auth::DkimResult::PermError};
constexpr std::array kDmarcResults{auth::DmarcResult::None, auth::DmarcResult::Pass,
                                   auth::DmarcResult::Fail, auth::DmarcResult::TempError,
                                   auth::DmarcResult::PermError};
constexpr std::array kScopes{auth::SpfScope::MailFrom, auth::SpfScope::Helo};
constexpr std::array kPolicies{auth::Policy::None, auth::Policy::Quarantine, auth::Policy::Reject};
constexpr std::array kDispositions{auth::Disposition::None, auth::Disposition::Quarantine,
                                   auth::Disposition::Reject};
constexpr std::array kAlignments{auth::Alignment::Relaxed, auth::Alignment::Strict};
constexpr std::array kDiscoveries{auth::Discovery::TreeWalk, auth::Discovery::Psl};
constexpr std::array kOverrides{auth::OverrideReason::Forwarded,
                                auth::OverrideReason::SampledOut,
                                auth::OverrideReason::TrustedForwarder,
                                auth::OverrideReason::MailingList,
                                auth::OverrideReason::LocalPolicy,
                                auth::OverrideReason::PolicyTestMode,
                                auth::OverrideReason::Other};
constexpr std::array kKinds{auth::FailureKind::Dmarc, auth::FailureKind::Dkim,
                            auth::FailureKind::Spf};

// --------------------------------------------------------------- evaluation

json spf_to_json(const auth::SpfVerdict& v) {
  return {{"scope", to_string(v.scope)},
          {"result", to_string(v.result)},
          {"domain", text(v.domain)},
          {"identity", text(v.identity)},
          {"explanation", text(v.explanation)}};
}

auth::SpfVerdict spf_from_json(const json& j) {
  auth::SpfVerdict v;
  v.scope = enum_of(j, "scope", kScopes, auth::SpfScope::MailFrom);
  v.result = enum_of(j, "result", kSpfResults, auth::SpfResult::None);
  v.domain = str(j, "domain");
  v.identity = str(j, "identity");
  v.explanation = str(j, "explanation");
  return v;
}

json dkim_to_json(const auth::DkimVerdict& v) {
  return {{"result", to_string(v.result)},
          {"domain", text(v.domain)},
          {"selector", text(v.selector)},
          {"identity", text(v.identity)},
          {"algorithm", text(v.algorithm)},
          {"reason", text(v.reason)},
          {"testing", v.testing},
          {"header_b", text(v.header_b)},
          {"report_requested", v.report_requested},
          {"auth_failure", text(v.auth_failure)},
          {"canonicalized_header", text(v.canonicalized_header)},
          {"canonicalized_body", text(v.canonicalized_body)}};
}

auth::DkimVerdict dkim_from_json(const json& j) {
  auth::DkimVerdict v;
  v.result = enum_of(j, "result", kDkimResults, auth::DkimResult::None);
  v.domain = str(j, "domain");
  v.selector = str(j, "selector");
  v.identity = str(j, "identity");
  v.algorithm = str(j, "algorithm");
  v.reason = str(j, "reason");
  v.testing = boolean(j, "testing");
  v.header_b = str(j, "header_b");
  v.report_requested = boolean(j, "report_requested");
  v.auth_failure = str(j, "auth_failure");
  v.canonicalized_header = str(j, "canonicalized_header");
  v.canonicalized_body = str(j, "canonicalized_body");
  return v;
}

json record_to_json(const auth::DmarcRecord& r) {
  json j = {{"p", to_string(r.p)}, {"adkim", to_string(r.adkim)}, {"aspf", to_string(r.aspf)},
            {"pct", r.pct},        {"testing", r.testing},        {"psd", std::string(1, r.psd)},
            {"fo", text(r.fo)},    {"rua", texts(r.rua)},         {"ruf", texts(r.ruf)},
            {"ri", r.ri},          {"text", text(r.text)}};
  if (r.sp) j["sp"] = to_string(*r.sp);
  if (r.np) j["np"] = to_string(*r.np);
  return j;
}

auth::DmarcRecord record_from_json(const json& j) {
  auth::DmarcRecord r;
  r.p = enum_of(j, "p", kPolicies, auth::Policy::None);
  if (member(j, "sp")) r.sp = enum_of(j, "sp", kPolicies, auth::Policy::None);
  if (member(j, "np")) r.np = enum_of(j, "np", kPolicies, auth::Policy::None);
  r.adkim = enum_of(j, "adkim", kAlignments, auth::Alignment::Relaxed);
  r.aspf = enum_of(j, "aspf", kAlignments, auth::Alignment::Relaxed);
  r.pct = num<int>(j, "pct", 100);
  r.testing = boolean(j, "testing");
  std::string psd = str(j, "psd");
  r.psd = psd.size() == 1 ? psd[0] : 'u';
  if (member(j, "fo")) r.fo = str(j, "fo");
  r.rua = get_texts(j, "rua");
  r.ruf = get_texts(j, "ruf");
  r.ri = num<std::uint32_t>(j, "ri", 86400);
  r.text = str(j, "text");
  return r;
}

json dmarc_to_json(const auth::DmarcVerdict& d) {
  json overrides = json::array();
  for (const auto& [reason, comment] : d.overrides) {
    overrides.push_back({{"reason", to_string(reason)}, {"comment", text(comment)}});
  }
  json j = {{"result", to_string(d.result)},
            {"header_from", text(d.header_from)},
            {"policy_domain", text(d.policy_domain)},
            {"org_domain", text(d.org_domain)},
            {"discovery", to_string(d.discovery)},
            {"applied_policy", to_string(d.applied_policy)},
            {"dkim_aligned", d.dkim_aligned},
            {"spf_aligned", d.spf_aligned},
            {"disposition", to_string(d.disposition)},
            {"overrides", std::move(overrides)},
            {"reason", text(d.reason)}};
  if (d.record) j["record"] = record_to_json(*d.record);
  return j;
}

auth::DmarcVerdict dmarc_from_json(const json& j) {
  auth::DmarcVerdict d;
  d.result = enum_of(j, "result", kDmarcResults, auth::DmarcResult::None);
  d.header_from = str(j, "header_from");
  d.policy_domain = str(j, "policy_domain");
  d.org_domain = str(j, "org_domain");
  d.discovery = enum_of(j, "discovery", kDiscoveries, auth::Discovery::TreeWalk);
  if (const json* r = member(j, "record"); r && r->is_object()) d.record = record_from_json(*r);
  d.applied_policy = enum_of(j, "applied_policy", kPolicies, auth::Policy::None);
  d.dkim_aligned = boolean(j, "dkim_aligned");
  d.spf_aligned = boolean(j, "spf_aligned");
  d.disposition = enum_of(j, "disposition", kDispositions, auth::Disposition::None);
  if (const json* o = member(j, "overrides"); o && o->is_array()) {
    for (const auto& e : *o) {
      d.overrides.emplace_back(enum_of(e, "reason", kOverrides, auth::OverrideReason::Other),
                               str(e, "comment"));
    }
  }
  d.reason = str(j, "reason");
  return d;
}

json evaluation_to_json(const auth::Evaluation& ev) {
  json spf = json::array();
  for (const auto& v : ev.spf) spf.push_back(spf_to_json(v));
  json dkim = json::array();
  for (const auto& v : ev.dkim) dkim.push_back(dkim_to_json(v));
  return {{"time", ev.time},
          {"source_ip", text(ev.source_ip)},
          {"helo", text(ev.helo)},
          {"envelope_from", text(ev.envelope_from)},
          {"envelope_to", text(ev.envelope_to)},
          {"header_from", text(ev.header_from)},
          {"message_id", text(ev.message_id)},
          {"spf", std::move(spf)},
          {"dkim", std::move(dkim)},
          {"dmarc", dmarc_to_json(ev.dmarc)},
          {"trusted_upstream", ev.trusted_upstream},
          {"mail_from", text(ev.mail_from)},
          {"rcpt_to", texts(ev.rcpt_to)},
          {"authentication_results", text(ev.authentication_results)},
          {"original", text(ev.original)},
          {"original_truncated", ev.original_truncated}};
}

auth::Evaluation evaluation_from_json(const json& j) {
  auth::Evaluation ev;
  ev.time = num<std::int64_t>(j, "time");
  ev.source_ip = str(j, "source_ip");
  ev.helo = str(j, "helo");
  ev.envelope_from = str(j, "envelope_from");
  ev.envelope_to = str(j, "envelope_to");
  ev.header_from = str(j, "header_from");
  ev.message_id = str(j, "message_id");
  if (const json* a = member(j, "spf"); a && a->is_array()) {
    for (const auto& e : *a) ev.spf.push_back(spf_from_json(e));
  }
  if (const json* a = member(j, "dkim"); a && a->is_array()) {
    for (const auto& e : *a) ev.dkim.push_back(dkim_from_json(e));
  }
  if (const json* d = member(j, "dmarc"); d && d->is_object()) ev.dmarc = dmarc_from_json(*d);
  ev.trusted_upstream = boolean(j, "trusted_upstream");
  ev.mail_from = str(j, "mail_from");
  ev.rcpt_to = get_texts(j, "rcpt_to");
  ev.authentication_results = str(j, "authentication_results");
  ev.original = str(j, "original");
  ev.original_truncated = boolean(j, "original_truncated");
  return ev;
}

// --------------------------------------------------------------- request

json request_to_json(const auth::FailureReportRequest& r) {
  return {{"kind", to_string(r.kind)},
          {"recipient", text(r.recipient)},
          {"max_size", r.max_size},
          {"reported_domain", text(r.reported_domain)},
          {"auth_failure", text(r.auth_failure)},
          {"dkim_index", r.dkim_index},
          {"spf_record", text(r.spf_record)},
          {"identity_alignment", text(r.identity_alignment)},
          {"delivery_result", text(r.delivery_result)},
          {"limit_count", r.limit_count},
          {"limit_period", r.limit_period}};
}

auth::FailureReportRequest request_from_json(const json& j) {
  auth::FailureReportRequest r;
  r.kind = enum_of(j, "kind", kKinds, auth::FailureKind::Dmarc);
  r.recipient = str(j, "recipient");
  r.max_size = num<std::uint64_t>(j, "max_size");
  r.reported_domain = str(j, "reported_domain");
  r.auth_failure = str(j, "auth_failure");
  r.dkim_index = num<int>(j, "dkim_index", -1);
  r.spf_record = str(j, "spf_record");
  r.identity_alignment = str(j, "identity_alignment");
  r.delivery_result = str(j, "delivery_result");
  r.limit_count = num<std::uint32_t>(j, "limit_count");
  r.limit_period = num<std::int64_t>(j, "limit_period");
  return r;
}

constexpr int kVersion = 1;

}  // namespace

std::string outbox_kind(auth::FailureKind kind) {
  return std::string(auth::to_string(kind)) + "-failure";
}

std::string failure_payload_to_json(const auth::Evaluation& ev,
                                    const auth::FailureReportRequest& request) {
  json j = {{"version", kVersion},
            {"evaluation", evaluation_to_json(ev)},
            {"request", request_to_json(request)}};
  // Every string went through text(): dumping cannot meet invalid UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<FailurePayload> failure_payload_from_json(std::string_view text_in) {
  json j = json::parse(text_in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::Invalid, "failure report payload is not a JSON object");
  }
  const json* request = member(j, "request");
  if (!request || !request->is_object()) {
    return make_error(ErrorCode::Invalid, "failure report payload has no request");
  }
  FailurePayload p;
  if (const json* ev = member(j, "evaluation"); ev && ev->is_object()) {
    p.evaluation = evaluation_from_json(*ev);
  }
  p.request = request_from_json(*request);
  if (p.request.recipient.empty()) {
    return make_error(ErrorCode::Invalid, "failure report payload has no recipient");
  }
  return p;
}

}  // namespace mailreport::store
