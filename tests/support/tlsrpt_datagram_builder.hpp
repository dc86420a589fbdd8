// libtlsrpt datagrams built in tests byte for byte as libtlsrpt 0.5 writes them (libtlsrpt.c:
// tlsrpt_init_delivery_request, tlsrpt_init_policy, tlsrpt_add_policy_string,
// tlsrpt_add_mx_host_pattern, tlsrpt_add_delivery_request_failure, tlsrpt_finish_policy,
// tlsrpt_finish_delivery_request), so that the collector is tested against the protocol
// Postfix >= 3.10 speaks without a Postfix built with TLSRPT support (Debian 12 has 3.7):
//
//   {"dpv": "1","d": "<domain>","pr": "<record>","policies":[{"policy-type":<n>,
//    "policy-domain": "<d>","policy-string":["..."],"mx-host":["..."],
//    "failure-details":[{"c":<code>,"s": "...","n": "...","h": "...","r": "...","a": "...",
//    "f": "..."}],"t":<details>,"f":<0|1>}]}
//
// (libtlsrpt writes `"name": "value"` with a blank after the colon for strings, none for
// numbers; optional values are left out when NULL; "t" counts the policy's failure details.)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailreport::test {

class TlsrptDatagramBuilder {
 public:
  enum PolicyType { Tlsa = 1, Sts = 2, NoPolicyFound = 9 };

  TlsrptDatagramBuilder(std::string_view domain, std::string_view record) {
    out_ = "{";
    attr(out_, "dpv", "1", true);
    attr(out_, "d", domain);
    attr(out_, "pr", record);
  }

  TlsrptDatagramBuilder& policy(PolicyType type, std::optional<std::string_view> domain) {
    out_ += policies_ == 0 ? ",\"policies\":[{" : ",{";
    out_ += "\"policy-type\":" + std::to_string(static_cast<int>(type));
    if (domain) attr(out_, "policy-domain", *domain);
    ++policies_;
    strings_.clear();
    mx_.clear();
    failures_.clear();
    failure_count_ = 0;
    return *this;
  }
  TlsrptDatagramBuilder& policy_string(std::string_view s) {
    list_item(strings_, s);
    return *this;
  }
  TlsrptDatagramBuilder& mx_host(std::string_view s) {
    list_item(mx_, s);
    return *this;
  }
  using Opt = std::optional<std::string_view>;
  TlsrptDatagramBuilder& failure(int code, Opt sending_ip, Opt mx_name, Opt helo, Opt receiving_ip,
                                 Opt info, Opt reason) {
    if (!failures_.empty()) failures_ += ",";
    failures_ += "{\"c\":" + std::to_string(code);
    const std::pair<const char*, Opt> fields[] = {{"s", sending_ip}, {"n", mx_name},
                                                  {"h", helo},       {"r", receiving_ip},
                                                  {"a", info},       {"f", reason}};
    for (const auto& [name, value] : fields) {
      if (value) attr(failures_, name, *value);
    }
    failures_ += "}";
    ++failure_count_;
    return *this;
  }
  // final_result: 0 success, 1 failure.
  TlsrptDatagramBuilder& finish_policy(int final_result) {
    if (!strings_.empty()) out_ += ",\"policy-string\":[" + strings_ + "]";
    if (!mx_.empty()) out_ += ",\"mx-host\":[" + mx_ + "]";
    if (!failures_.empty()) out_ += ",\"failure-details\":[" + failures_ + "]";
    out_ +=
        ",\"t\":" + std::to_string(failure_count_) + ",\"f\":" + std::to_string(final_result) + "}";
    return *this;
  }
  std::string finish() const { return out_ + (policies_ > 0 ? "]}" : "}"); }

 private:
  static std::string escape(std::string_view s) {
    std::string o;
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      o += c;
    }
    return o;
  }
  static void attr(std::string& o, std::string_view name, std::string_view value,
                   bool first = false) {
    if (!first) o += ",";
    o += "\"" + std::string(name) + "\": \"" + escape(value) + "\"";
  }
  static void list_item(std::string& list, std::string_view s) {
    if (!list.empty()) list += ",";
    list += "\"" + escape(s) + "\"";
  }

  std::string out_;
  int policies_ = 0;
  std::string strings_, mx_, failures_;
  int failure_count_ = 0;
};

// The datagrams Postfix sends (tlsrpt_wrapper.c: one policy each; a success has no failure
// details, a failure one).
inline std::string sts_success(std::string_view domain, std::string_view record) {
  return TlsrptDatagramBuilder(domain, record)
      .policy(TlsrptDatagramBuilder::Sts, domain)
      .policy_string("version: STSv1")
      .policy_string("mode: enforce")
      .policy_string("mx: mx.example.net")
      .policy_string("max_age: 86400")
      .mx_host("mx.example.net")
      .finish_policy(0)
      .finish();
}

inline std::string dane_failure(std::string_view domain, std::string_view record, int code,
                                std::string_view reason) {
  return TlsrptDatagramBuilder(domain, record)
      .policy(TlsrptDatagramBuilder::Tlsa, domain)
      .policy_string("3 1 1 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF")
      .failure(code, "192.0.2.25", "mx.example.org", std::nullopt, "198.51.100.7", std::nullopt,
               reason)
      .finish_policy(1)
      .finish();
}

inline std::string no_policy_success(std::string_view domain, std::string_view record) {
  return TlsrptDatagramBuilder(domain, record)
      .policy(TlsrptDatagramBuilder::NoPolicyFound, std::nullopt)
      .finish_policy(0)
      .finish();
}

inline std::string starttls_missing(std::string_view domain, std::string_view record) {
  return TlsrptDatagramBuilder(domain, record)
      .policy(TlsrptDatagramBuilder::NoPolicyFound, std::nullopt)
      .failure(201, "192.0.2.25", "mx.example.com", std::nullopt, "203.0.113.9", std::nullopt,
               std::nullopt)
      .finish_policy(1)
      .finish();
}

}  // namespace mailreport::test
