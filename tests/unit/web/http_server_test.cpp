// HttpServer (libmicrohttpd wrapper) against a real HTTP client (libcurl) on loopback: query
// arguments, request bodies, the handler's status codes, 413 for a body over max_body, HEAD,
// a throwing handler, port 0, IPv6 and listen-address parsing.
#include "mailreport/web/http_server.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>

namespace mailreport::web {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

struct Answer {
  long status = 0;
  std::string body;
  std::string headers;  // raw header block, lower-cased
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Answer fetch(const std::string& url, const std::string& method = "GET",
             const std::string* body = nullptr, std::vector<std::string> headers = {}) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  Answer answer;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, &append);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &answer.headers);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
  if (method == "HEAD") {
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  } else if (method == "POST" && body != nullptr) {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body->size()));
  } else if (method != "GET") {
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> list;
  for (const auto& h : headers) list.reset(curl_slist_append(list.release(), h.c_str()));
  if (list) curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list.get());
  CURLcode rc = curl_easy_perform(curl.get());
  EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc) << " for " << url;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  for (auto& c : answer.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return answer;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    auto server = HttpServer::start(options, [this](const Request& r) { return handle(r); });
    ASSERT_TRUE(server.ok()) << server.error().describe();
    server_ = std::move(server).value();
    ASSERT_NE(server_->port(), 0);
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  Response handle(const Request& r) {
    {
      std::lock_guard lock(mu_);
      seen_.push_back(r);
    }
    if (r.path == "/echo") {
      Response resp =
          Response::text(200, r.method + " " + r.arg("a") + "|" + r.arg("b") + "|" + r.body);
      resp.headers.emplace_back("X-Test", r.header("x-custom"));
      return resp;
    }
    if (r.path == "/throw") throw std::runtime_error("boom");
    return Response::error(404, "no such page");
  }

  Request last() {
    std::lock_guard lock(mu_);
    return seen_.back();
  }

  std::unique_ptr<HttpServer> server_;
  std::string base_;
  std::mutex mu_;
  std::vector<Request> seen_;
};

TEST_F(HttpServerTest, GetWithQueryArguments) {
  start();
  Answer a = fetch(base_ + "/echo?a=one%20two&b=x%26y&flag", "GET", nullptr, {"X-Custom: hello"});
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "GET one two|x&y|");
  EXPECT_NE(a.headers.find("content-type: text/plain; charset=utf-8"), std::string::npos);
  EXPECT_NE(a.headers.find("x-test: hello"), std::string::npos);
  Request r = last();
  EXPECT_EQ(r.path, "/echo");
  EXPECT_EQ(r.remote, "127.0.0.1");
  EXPECT_EQ(r.query.count("flag"), 1U);
  EXPECT_EQ(r.header("x-custom"), "hello");
  EXPECT_EQ(r.header("absent"), "");
}

TEST_F(HttpServerTest, PostWithBody) {
  start();
  std::string body = "{\"events\": [1, 2, 3]}";
  Answer a = fetch(base_ + "/echo", "POST", &body, {"Content-Type: application/json"});
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "POST ||" + body);
  EXPECT_EQ(last().header("content-type"), "application/json");
}

TEST_F(HttpServerTest, LargeBodyWithinLimitArrivesWhole) {
  start();
  std::string body(300000, 'x');
  Answer a = fetch(base_ + "/echo", "POST", &body);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(last().body.size(), body.size());
}

TEST_F(HttpServerTest, NotFoundFromHandler) {
  start();
  Answer a = fetch(base_ + "/nowhere");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body, "{\"error\": \"no such page\"}");
  EXPECT_NE(a.headers.find("content-type: application/json"), std::string::npos);
}

TEST_F(HttpServerTest, BodyOverLimitIs413AndHandlerNotCalled) {
  ServerOptions options;
  options.max_body = 1000;
  start(options);
  std::string body(1001, 'y');
  Answer a = fetch(base_ + "/echo", "POST", &body);
  EXPECT_EQ(a.status, 413);
  {
    std::lock_guard lock(mu_);
    EXPECT_TRUE(seen_.empty());
  }
  // Chunked: no Content-Length, so the limit is found while reading.
  Answer chunked = fetch(base_ + "/echo", "POST", &body, {"Transfer-Encoding: chunked"});
  EXPECT_EQ(chunked.status, 413);
  std::string small(1000, 'z');
  EXPECT_EQ(fetch(base_ + "/echo", "POST", &small).status, 200);
}

TEST_F(HttpServerTest, HeadHasHeadersAndNoBody) {
  start();
  Answer a = fetch(base_ + "/echo?a=1", "HEAD");
  EXPECT_EQ(a.status, 200);
  EXPECT_TRUE(a.body.empty());
  EXPECT_NE(a.headers.find("content-length: 8"), std::string::npos) << a.headers;  // "HEAD 1||"
  EXPECT_EQ(last().method, "HEAD");
}

TEST_F(HttpServerTest, ThrowingHandlerAnswers500) {
  start();
  Answer a = fetch(base_ + "/throw");
  EXPECT_EQ(a.status, 500);
  EXPECT_EQ(a.body, "{\"error\": \"internal error\"}");
  // The server still serves.
  EXPECT_EQ(fetch(base_ + "/echo").status, 200);
}

TEST_F(HttpServerTest, ErrorMessageIsEscapedJson) {
  Response r = Response::error(400, "bad \"from\"\n\x01");
  EXPECT_EQ(r.body, "{\"error\": \"bad \\\"from\\\"\\n\\u0001\"}");
  EXPECT_EQ(r.status, 400);
}

TEST(HttpServerListen, Ipv6Loopback) {
  ServerOptions options;
  options.listen = "[::1]:0";
  auto server =
      HttpServer::start(options, [](const Request& r) { return Response::text(200, r.remote); });
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback: " << server.error().describe();
  Answer a = fetch("http://[::1]:" + std::to_string((*server)->port()) + "/");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "::1");
}

TEST(HttpServerListen, BadAddressesAreInvalid) {
  for (const char* bad :
       {"127.0.0.1", "127.0.0.1:99999", "example.org:80", "[::1]80", "::1:80", "127.0.0.1:x"}) {
    ServerOptions options;
    options.listen = bad;
    auto server = HttpServer::start(options, [](const Request&) { return Response{}; });
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_EQ(server.error().code, ErrorCode::Invalid) << bad;
  }
}

TEST(HttpServerListen, PortInUseIsIo) {
  ServerOptions options;
  auto first = HttpServer::start(options, [](const Request&) { return Response{}; });
  ASSERT_TRUE(first.ok());
  options.listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::start(options, [](const Request&) { return Response{}; });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::Io);
}

}  // namespace
}  // namespace mailreport::web
