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

// An answer or error text as one log line: control white space made spaces, trailing ones cut.
inline std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\r' || c == '\n' || c == '\t') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace mailreport::outbound::curl
