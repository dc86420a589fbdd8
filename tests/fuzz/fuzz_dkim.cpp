// Fuzzes DKIM verification of an untrusted message: the input is a message (header fields,
// an empty line, the body) handed to DkimVerification as the milter would, field by field
// (folded lines joined with "\n"), the body in chunks. Key records for a few selectors of
// f.test come from local DNS data (unusable RSA bytes, an Ed25519 key, a revoked and a
// testing key); every other name answers TempError, so no input reaches the network.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mailreport/auth/dkim.hpp"
#include "mailreport/dns/resolver.hpp"

namespace {

std::shared_ptr<mailreport::auth::DkimVerifier> verifier() {
  static mailreport::NullLogger log;
  static std::shared_ptr<mailreport::auth::DkimVerifier> v = [] {
    mailreport::dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = {
        R"(a._domainkey.f.test. 300 IN TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB")",
        R"(e._domainkey.f.test. 300 IN TXT "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")",
        R"(r._domainkey.f.test. 300 IN TXT "v=DKIM1; k=rsa; p=")",
        R"(t._domainkey.f.test. 300 IN TXT "v=DKIM1; t=y:s; k=rsa; h=sha256; p=AAAA")",
    };
    o.local_nxdomain = {"n._domainkey.f.test."};
    auto r = mailreport::dns::make_unbound_resolver(o, log);
    if (!r) return std::shared_ptr<mailreport::auth::DkimVerifier>();
    auto d = mailreport::auth::DkimVerifier::create(*r, log);
    return d ? *d : std::shared_ptr<mailreport::auth::DkimVerifier>();
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto dkim = verifier();
  if (!dkim) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t end = in.find("\n\n");
  std::string_view head = in.substr(0, end);
  std::string_view body = end == std::string_view::npos ? std::string_view() : in.substr(end + 2);

  auto v = dkim->start("fuzz", size > 0 && (data[0] & 1) != 0);
  std::string name;
  std::string value;
  auto flush = [&] {
    if (!name.empty()) (void)v->header(name, value);
    name.clear();
    value.clear();
  };
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t eol = head.find('\n', pos);
    std::string_view line = head.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos = eol == std::string_view::npos ? head.size() : eol + 1;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !name.empty()) {
      value += '\n';
      value += line;
      continue;
    }
    flush();
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    name = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  }
  flush();
  (void)v->end_of_headers();
  for (std::size_t i = 0; i < body.size(); i += 113) {
    std::string_view part = body.substr(i, 113);
    (void)v->body(std::span<const char>(part.data(), part.size()));
  }
  (void)v->finish();
  return 0;
}
