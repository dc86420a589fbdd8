// libtlsrpt datagrams (see tlsrpt_datagram.hpp): JSON parsed by nlohmann-json, then checked
// field by field. Strict: the sender is a local MTA through a socket only it can write to, so
// anything unexpected is a bug or a protocol change worth refusing loudly rather than counting
// wrongly.
#include "mailreport/report/tlsrpt_datagram.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace mailreport::report {

namespace {

using json = nlohmann::json;

Error invalid(std::string why) {
  return make_error(ErrorCode::Invalid, std::move(why));
}

// A string member; "" when absent. Error when present with another type.
Result<std::string> string_member(const json& o, const char* key, bool required,
                                  const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) return invalid(where + key + ": missing");
    return std::string();
  }
  if (!it->is_string()) return invalid(where + key + ": not a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> string_array(const json& o, const char* key,
                                              const std::string& where) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return out;
  if (!it->is_array()) return invalid(where + key + ": not an array");
  for (const auto& v : *it) {
    if (!v.is_string()) return invalid(where + key + ": holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::int64_t> integer_member(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end()) return invalid(where + key + ": missing");
  if (!it->is_number_integer()) return invalid(where + key + ": not an integer");
  return it->get<std::int64_t>();
}

Result<TlsrptFailure> read_failure(const json& d, const std::string& where) {
  if (!d.is_object()) return invalid(where + ": not an object");
  auto code = integer_member(d, "c", where);
  if (!code) return code.error();
  TlsrptFailure f;
  f.result_type = std::string(tlsrpt_result_type(static_cast<int>(*code)));
  if (f.result_type.empty()) {
    return invalid(where + "c: unknown failure code " + std::to_string(*code));
  }
  for (auto [key, field] :
       {std::pair{"s", &f.sending_mta_ip}, std::pair{"n", &f.receiving_mx_hostname},
        std::pair{"h", &f.receiving_mx_helo}, std::pair{"r", &f.receiving_ip},
        std::pair{"a", &f.additional_information}, std::pair{"f", &f.failure_reason_code}}) {
    auto v = string_member(d, key, false, where);
    if (!v) return v.error();
    *field = std::move(*v);
  }
  return f;
}

Result<TlsrptPolicyResult> read_policy(const json& p, const std::string& where) {
  if (!p.is_object()) return invalid(where + ": not an object");
  TlsrptPolicyResult r;
  auto type = integer_member(p, "policy-type", where);
  if (!type) return type.error();
  switch (*type) {
    case 1: r.policy_type = "tlsa"; break;
    case 2: r.policy_type = "sts"; break;
    case 9: r.policy_type = "no-policy-found"; break;
    default: return invalid(where + "policy-type: unknown value " + std::to_string(*type));
  }
  auto domain = string_member(p, "policy-domain", false, where);
  if (!domain) return domain.error();
  r.policy_domain = std::move(*domain);
  auto strings = string_array(p, "policy-string", where);
  if (!strings) return strings.error();
  r.policy_string = std::move(*strings);
  auto mx = string_array(p, "mx-host", where);
  if (!mx) return mx.error();
  r.mx_host = std::move(*mx);
  if (auto it = p.find("failure-details"); it != p.end() && !it->is_null()) {
    if (!it->is_array()) return invalid(where + "failure-details: not an array");
    std::size_t i = 0;
    for (const auto& d : *it) {
      auto f = read_failure(d, where + "failure-details[" + std::to_string(i++) + "].");
      if (!f) return f.error();
      r.failures.push_back(std::move(*f));
    }
  }
  auto count = integer_member(p, "t", where);
  if (!count) return count.error();
  if (*count != static_cast<std::int64_t>(r.failures.size())) {
    return invalid(where + "t: says " + std::to_string(*count) + " failure details, " +
                   std::to_string(r.failures.size()) + " present");
  }
  auto final_result = integer_member(p, "f", where);
  if (!final_result) return final_result.error();
  if (*final_result != 0 && *final_result != 1) {
    return invalid(where + "f: unknown final result " + std::to_string(*final_result));
  }
  r.success = *final_result == 0;
  return r;
}

}  // namespace

std::string_view tlsrpt_result_type(int code) noexcept {
  switch (code) {
    case 201: return "starttls-not-supported";
    case 202: return "certificate-host-mismatch";
    case 203: return "certificate-not-trusted";
    case 204: return "certificate-expired";
    case 205: return "validation-failure";
    case 301: return "sts-policy-fetch-error";
    case 302: return "sts-policy-invalid";
    case 303: return "sts-webpki-invalid";
    case 304: return "tlsa-invalid";
    case 305: return "dnssec-invalid";
    case 306: return "dane-required";
    default: return "";
  }
}

Result<TlsrptDatagram> parse_tlsrpt_datagram(std::string_view datagram) {
  json doc = json::parse(datagram.begin(), datagram.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid("not JSON");
  if (!doc.is_object()) return invalid("not a JSON object");
  if (auto it = doc.find("dpv"); it != doc.end()) {
    // libtlsrpt writes the version as a string; accept the number too.
    const bool v1 = (it->is_string() && it->get<std::string>() == "1") ||
                    (it->is_number_integer() && it->get<std::int64_t>() == 1);
    if (!v1) return invalid("dpv: unsupported datagram protocol version " + it->dump());
  }
  TlsrptDatagram out;
  auto domain = string_member(doc, "d", true, "");
  if (!domain) return domain.error();
  if (domain->empty()) return invalid("d: empty");
  out.domain = std::move(*domain);
  std::transform(out.domain.begin(), out.domain.end(), out.domain.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto record = string_member(doc, "pr", true, "");
  if (!record) return record.error();
  out.record = std::move(*record);
  auto pols = doc.find("policies");
  if (pols == doc.end() || !pols->is_array() || pols->empty()) {
    return invalid("policies: missing, not an array, or empty");
  }
  std::size_t i = 0;
  for (const auto& p : *pols) {
    auto r = read_policy(p, "policies[" + std::to_string(i++) + "].");
    if (!r) return r.error();
    out.policies.push_back(std::move(*r));
  }
  return out;
}

}  // namespace mailreport::report
