// outbound/https_post: RFC 8460 §5.3.2 delivery of a TLS report to an https rua: POST with
// Content-Type application/tlsrpt+gzip (libcurl). 2xx is success; 5xx, 429, timeouts and
// connection failures are temporary; other answers permanent. TLS certificates are verified
// against the system store (ca_file for tests).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "mailreport/outbound/submit.hpp"

namespace mailreport::outbound {

class HttpsPoster {
 public:
  virtual ~HttpsPoster() = default;
  virtual SubmitOutcome post(std::string_view url, std::string_view content_type,
                             std::string_view body) = 0;
};

struct HttpsPostOptions {
  std::chrono::seconds timeout{60};
  std::filesystem::path ca_file;  // "" = the system's CAs
  std::string user_agent = "mailreport";
};

std::unique_ptr<HttpsPoster> make_https_poster(const HttpsPostOptions& options);

}  // namespace mailreport::outbound
