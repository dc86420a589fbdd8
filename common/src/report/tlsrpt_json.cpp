// SMTP TLS reporting (RFC 8460 §4) JSON parser. nlohmann-json reads the JSON; this file maps
// the RFC 8460 §4.4 members onto the model and salvages the variants seen in the wild:
//
//   - date-time without a zone (Microsoft) is taken as UTC; fractional seconds and numeric
//     offsets are accepted (RFC 3339 §5.6);
//   - mx-host as a string instead of an array; entries carrying a literal "mx: " prefix
//     (copied from the MTA-STS policy line) have it stripped;
//   - contact-info null or missing;
//   - a TLSA policy-string holding one JSON-encoded array inside a string (Microsoft) is
//     unpacked into one element per TLSA record;
//   - missing policy-domain, summary or counts, counts sent as strings, unknown policy-type
//     (kept as sent).
// Each salvage is noted in TlsReport::errors. The report is refused (Invalid) only when the
// input is not JSON, not an object, or has neither "policies" nor "organization-name".
// Not done: checking that failed-session-counts add up to total-failure-session-count.
#include <nlohmann/json.hpp>

#include <cctype>
#include <charconv>
#include <string>

#include "mailreport/report/tlsrpt_json.hpp"
#include "report/iso8601.hpp"

namespace mailreport::report {

namespace {

using nlohmann::json;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// Collects salvage notes with the JSON path they apply to.
class Reader {
 public:
  explicit Reader(std::vector<std::string>& errors) : errors_(errors) {}

  void note(const std::string& path, const std::string& what) {
    errors_.push_back(path + ": " + what);
  }

  // A string member. Numbers are rendered as text, null and absent give "" (noted when
  // `required`), anything else is noted and rendered as JSON.
  std::string text(const json& obj, const char* key, const std::string& path, bool required) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) note(path + key, it == obj.end() ? "missing" : "null");
      return {};
    }
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number()) return it->dump();
    note(path + key, std::string("expected a string, got ") + it->type_name());
    return it->dump();
  }

  // A non-negative integer member (RFC 8460 §4.4: JSON numbers). Strings holding digits are
  // accepted and noted; absent counts are 0 and noted.
  std::uint64_t count(const json& obj, const char* key, const std::string& path) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      note(path + key, "missing, taken as 0");
      return 0;
    }
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_number_integer()) {
      note(path + key, "negative, taken as 0");
      return 0;
    }
    if (it->is_number_float()) {
      const double d = it->get<double>();
      if (d >= 0 && d < 1.8e19 && d == static_cast<double>(static_cast<std::uint64_t>(d))) {
        return static_cast<std::uint64_t>(d);
      }
      note(path + key, "not a whole number: " + it->dump() + ", taken as 0");
      return 0;
    }
    if (it->is_string()) {
      const std::string& s = it->get_ref<const std::string&>();
      const std::string_view t = trim(s);
      std::uint64_t v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc() && end == t.data() + t.size() && !t.empty()) {
        note(path + key, "number sent as a string");
        return v;
      }
      note(path + key, "not a number: \"" + s + "\", taken as 0");
      return 0;
    }
    note(path + key, std::string("expected a number, got ") + it->type_name() + ", taken as 0");
    return 0;
  }

  // date-range members: RFC 3339 date-time (RFC 8460 §4.4).
  std::int64_t datetime(const json& range, const char* key, const std::string& path) {
    const std::string raw = text(range, key, path, true);
    if (raw.empty()) return 0;
    auto parsed = iso8601::parse(raw);
    if (!parsed) {
      note(path + key, "not a date-time: \"" + raw + "\"");
      return 0;
    }
    if (!parsed->had_zone) note(path + key, "no time zone in \"" + raw + "\", taken as UTC");
    return parsed->epoch;
  }

 private:
  std::vector<std::string>& errors_;
};

// Microsoft sends TLSA policy strings as ["[\"3 1 1 AB..\",\"3 1 1 CD..\"]"]: one string
// that is itself a JSON array. Returns the unpacked strings, or nothing if `s` is not that.
std::optional<std::vector<std::string>> unpack_json_array(std::string_view s) {
  s = trim(s);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  json inner = json::parse(s.begin(), s.end(), nullptr, /*allow_exceptions=*/false);
  if (inner.is_discarded() || !inner.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : inner) {
    if (!e.is_string()) return std::nullopt;
    out.push_back(e.get<std::string>());
  }
  return out;
}

void read_policy_strings(Reader& rd, const json& policy, const std::string& path, TlsPolicy& p) {
  auto it = policy.find("policy-string");
  if (it == policy.end() || it->is_null()) return;  // optional for no-policy-found
  auto add = [&](const std::string& s) {
    if (auto unpacked = unpack_json_array(s)) {
      rd.note(path + "policy-string", "a JSON-encoded array inside a string, unpacked");
      for (auto& u : *unpacked) p.policy_string.push_back(std::move(u));
    } else {
      p.policy_string.push_back(s);
    }
  };
  if (it->is_string()) {
    rd.note(path + "policy-string", "a string instead of an array");
    add(it->get<std::string>());
    return;
  }
  if (!it->is_array()) {
    rd.note(path + "policy-string", std::string("expected an array, got ") + it->type_name());
    return;
  }
  for (const auto& e : *it) {
    if (e.is_string()) {
      add(e.get<std::string>());
    } else {
      rd.note(path + "policy-string", "non-string element " + e.dump());
      p.policy_string.push_back(e.dump());
    }
  }
}

void read_mx_hosts(Reader& rd, const json& policy, const std::string& path, TlsPolicy& p) {
  auto it = policy.find("mx-host");
  if (it == policy.end() || it->is_null()) return;  // optional (RFC 8460 §4.4)
  bool stripped = false;
  auto add = [&](std::string_view host) {
    host = trim(host);
    // Some reporters copy the MTA-STS policy line ("mx: mx.example.com") verbatim.
    if (starts_with_nocase(host, "mx:")) {
      host = trim(host.substr(3));
      stripped = true;
    }
    if (!host.empty()) p.mx_host.emplace_back(host);
  };
  if (it->is_string()) {
    // The RFC 8460 example itself (as printed in some copies) uses a plain string.
    add(it->get_ref<const std::string&>());
  } else if (it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_string()) {
        add(e.get_ref<const std::string&>());
      } else {
        rd.note(path + "mx-host", "non-string element " + e.dump());
      }
    }
  } else {
    rd.note(path + "mx-host", std::string("expected an array, got ") + it->type_name());
  }
  if (stripped) rd.note(path + "mx-host", "literal \"mx: \" prefix stripped");
}

TlsFailureDetail read_failure_detail(Reader& rd, const json& d, const std::string& path) {
  TlsFailureDetail f;
  f.result_type = rd.text(d, "result-type", path, true);
  f.sending_mta_ip = rd.text(d, "sending-mta-ip", path, false);
  f.receiving_mx_hostname = rd.text(d, "receiving-mx-hostname", path, false);
  f.receiving_mx_helo = rd.text(d, "receiving-mx-helo", path, false);
  f.receiving_ip = rd.text(d, "receiving-ip", path, false);
  f.failed_session_count = rd.count(d, "failed-session-count", path);
  f.additional_information = rd.text(d, "additional-information", path, false);
  f.failure_reason_code = rd.text(d, "failure-reason-code", path, false);
  return f;
}

TlsPolicy read_policy(Reader& rd, const json& entry, const std::string& path) {
  TlsPolicy p;
  if (!entry.is_object()) {
    rd.note(path, std::string("expected an object, got ") + entry.type_name());
    return p;
  }
  auto pol = entry.find("policy");
  if (pol == entry.end() || !pol->is_object()) {
    rd.note(path + "policy", "missing");
  } else {
    const std::string pp = path + "policy.";
    p.policy_type = rd.text(*pol, "policy-type", pp, true);
    // RFC 8460 §4.4: tlsa, sts, no-policy-found. Others are kept as sent.
    if (!p.policy_type.empty() && p.policy_type != "tlsa" && p.policy_type != "sts" &&
        p.policy_type != "no-policy-found") {
      rd.note(pp + "policy-type", "unknown value \"" + p.policy_type + "\" kept as sent");
    }
    read_policy_strings(rd, *pol, pp, p);
    p.policy_domain = rd.text(*pol, "policy-domain", pp, true);
    read_mx_hosts(rd, *pol, pp, p);
  }
  auto sum = entry.find("summary");
  if (sum == entry.end() || !sum->is_object()) {
    rd.note(path + "summary", "missing, counts taken as 0");
  } else {
    const std::string sp = path + "summary.";
    p.total_successful_session_count = rd.count(*sum, "total-successful-session-count", sp);
    p.total_failure_session_count = rd.count(*sum, "total-failure-session-count", sp);
  }
  auto fd = entry.find("failure-details");
  if (fd != entry.end() && !fd->is_null()) {
    if (!fd->is_array()) {
      rd.note(path + "failure-details", std::string("expected an array, got ") + fd->type_name());
    } else {
      std::size_t i = 0;
      for (const auto& d : *fd) {
        const std::string dp = path + "failure-details[" + std::to_string(i++) + "].";
        if (!d.is_object()) {
          rd.note(dp, std::string("expected an object, got ") + d.type_name());
          continue;
        }
        p.failure_details.push_back(read_failure_detail(rd, d, dp));
      }
    }
  }
  return p;
}

Result<TlsReport> parse_document(const json& doc) {
  if (!doc.is_object() || (!doc.contains("policies") && !doc.contains("organization-name"))) {
    return make_error(ErrorCode::Invalid, "not a TLS report (no organization-name or policies)");
  }
  TlsReport r;
  Reader rd(r.errors);
  r.organization_name = rd.text(doc, "organization-name", "", true);
  auto range = doc.find("date-range");
  if (range == doc.end() || !range->is_object()) {
    rd.note("date-range", "missing");
  } else {
    r.date_range.begin = rd.datetime(*range, "start-datetime", "date-range.");
    r.date_range.end = rd.datetime(*range, "end-datetime", "date-range.");
  }
  r.contact_info = rd.text(doc, "contact-info", "", true);
  r.report_id = rd.text(doc, "report-id", "", true);
  auto pols = doc.find("policies");
  if (pols == doc.end() || pols->is_null()) {
    rd.note("policies", "missing");
  } else if (pols->is_object()) {
    // RFC 8460 §4.4: "policies" MUST be an array; a lone object is taken as one policy.
    rd.note("policies", "an object instead of an array");
    r.policies.push_back(read_policy(rd, *pols, "policies[0]."));
  } else if (!pols->is_array()) {
    rd.note("policies", std::string("expected an array, got ") + pols->type_name());
  } else {
    std::size_t i = 0;
    for (const auto& entry : *pols) {
      r.policies.push_back(read_policy(rd, entry, "policies[" + std::to_string(i++) + "]."));
    }
  }
  return r;
}

}  // namespace

Result<TlsReport> parse_tlsrpt_json(std::string_view text) {
  // nlohmann-json reports parse errors and type errors by exception; none leaves this
  // function (expected failures are values).
  try {
    // A UTF-8 byte order mark is not JSON (RFC 8259 §8.1) but some writers add one.
    if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    json doc = json::parse(text.begin(), text.end());
    return parse_document(doc);
  } catch (const json::parse_error& e) {
    return make_error(ErrorCode::Invalid, std::string("not a TLS report: ") + e.what());
  } catch (const json::exception& e) {
    return make_error(ErrorCode::Invalid, std::string("TLS report: ") + e.what());
  }
}

}  // namespace mailreport::report
