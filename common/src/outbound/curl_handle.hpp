// libcurl behind RAII for outbound/ (SMTP submission in submit.cpp, https POST in
// https_post.cpp) and alerts/ (webhook POSTs): easy handles and header lists are freed on every
// path, and curl_global_init runs once per process, before the first handle.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace mailreport::outbound::curl {

struct EasyDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// A new easy handle (null when libcurl cannot make one), after curl_global_init (once, for
// every caller: an inline function's static is one object program-wide).
inline EasyPtr new_easy() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return EasyPtr(curl_easy_init());
}

// The first bytes of an answer's body, kept to say why a request failed.
inline constexpr std::size_t kReplyCap = 512;

// CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA a std::string*: keeps up to kReplyCap bytes. A C
// callback: nothing may throw past it (a bad_alloc is swallowed).
extern "C" inline size_t keep_reply_start(char* data, size_t size, size_t nmemb,
                                          void* user) noexcept {
  auto* reply = static_cast<std::string*>(user);
  const std::size_t n = size * nmemb;
  try {
    if (reply->size() < kReplyCap) reply->append(data, std::min(n, kReplyCap - reply->size()));
  } catch (...) {
  }
  return n;
}

// The options every POST of ours sets: `url` over `protocols` only ("https", "http,https"),
// `body` as is (not copied: it must outlive the transfer), `headers`, no redirects, no
// signals, TLS peer and host verified, the error text in `errbuf` (CURL_ERROR_SIZE bytes) and
// the answer's first bytes in `reply`. Callers add timeouts, credentials and CA settings.
inline void set_post_options(CURL* c, const std::string& url, const char* protocols,
                             std::string_view body, curl_slist* headers, const char* user_agent,
                             char* errbuf, std::string* reply) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &keep_reply_start);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
}

// An answer or error text as one log line: control white space made spaces, trailing ones cut.
inline std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace mailreport::outbound::curl
