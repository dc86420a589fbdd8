// outbound/https_post: RFC 8460 §5.4 (standards.md §4.3) delivery of a TLS report to an https rua
// with libcurl (see mailreport/outbound/https_post.hpp).
// - POST of the gzip body with Content-Type application/tlsrpt+gzip, our User-Agent, no
//   "Expect: 100-continue" (receivers need not support it), https only (CURLOPT_PROTOCOLS_STR,
//   redirects not followed: a report is not re-posted somewhere else).
// - Certificates are verified (peer and host name) against the system's CAs or ca_file.
//   RFC 8460 §3 allows ignoring certificate errors; we do not: the report describes failures
//   of the reporting domain's own infrastructure and should not leak to an impostor.
// - Outcome (RFC 8460 §5.4: the receiver answers success, typically 200 or 201): 2xx Sent;
//   5xx, 429 (RFC 6585 §4), 408, timeouts and connection or TLS-handshake failures TempFail
//   (retried, RFC 8460 §5.5); other answers (4xx, 3xx) and URLs that are not https PermFail.
//
// Not done: application/tlsrpt+json (uncompressed) bodies, proxies beyond libcurl's
// environment variables.
#include "mailreport/outbound/https_post.hpp"

#include <algorithm>
#include <cstring>

#include "outbound/curl_handle.hpp"

namespace mailreport::outbound {

namespace {

using curl::SlistPtr;

class CurlHttpsPoster final : public HttpsPoster {
 public:
  explicit CurlHttpsPoster(HttpsPostOptions options) : options_(std::move(options)) {}

  SubmitOutcome post(std::string_view url_in, std::string_view content_type,
                     std::string_view body) override {
    const std::string url(url_in);
    curl::EasyPtr curl = curl::new_easy();
    if (!curl) return {SubmitStatus::TempFail, "curl_easy_init failed"};
    CURL* c = curl.get();
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string reply;
    const std::string type = "Content-Type: " + std::string(content_type);
    SlistPtr headers(curl_slist_append(nullptr, type.c_str()));
    if (!headers) return {SubmitStatus::TempFail, "out of memory"};
    curl_slist* more = curl_slist_append(headers.get(), "Expect:");
    if (more == nullptr) return {SubmitStatus::TempFail, "out of memory"};
    curl::set_post_options(c, url, "https", body, headers.get(), options_.user_agent.c_str(),
                           errbuf, &reply);
    const std::string ca = options_.ca_file.string();
    if (!ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
    curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(std::min<std::int64_t>(options_.timeout.count(), 30)));
    const CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
      // Not an https URL we can use: trying again will not help.
      return {SubmitStatus::PermFail,
              url + ": " + curl::one_line(errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc))};
    }
    if (rc != CURLE_OK) {
      // No answer: connection refused, DNS, TLS handshake, timeout — try again later.
      const std::string why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
      return {SubmitStatus::TempFail, url + ": " + curl::one_line(why)};
    }
    std::string detail = url + ": HTTP " + std::to_string(status);
    if (!reply.empty()) detail += ": " + curl::one_line(reply);
    if (status >= 200 && status < 300) return {SubmitStatus::Sent, detail};
    // RFC 8460 §5.5 asks for retries; a server error, 429 Too Many Requests and 408 Request
    // Timeout may pass, anything else the receiver refused for good.
    if (status >= 500 || status == 429 || status == 408) return {SubmitStatus::TempFail, detail};
    return {SubmitStatus::PermFail, detail};
  }

 private:
  HttpsPostOptions options_;
};

}  // namespace

std::unique_ptr<HttpsPoster> make_https_poster(const HttpsPostOptions& options) {
  return std::make_unique<CurlHttpsPoster>(options);
}

}  // namespace mailreport::outbound
