// RFC 8460 §5.4 delivery by HTTPS POST (outbound/https_post) against a loopback HTTPS server
// started by the test (https_test_server.hpp): the bytes and header fields the server
// receives, the answer mapping (2xx sent; 5xx, 429 temporary; other 4xx permanent), an
// untrusted certificate and a refused connection as temporary failures.
#include "mailreport/outbound/https_post.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "https_test_server.hpp"

namespace mailreport::outbound {
namespace {

std::string binary_body() {
  std::string b = "\x1f\x8b\x08";
  for (int i = 0; i < 5000; ++i) b += static_cast<char>(i * 7 % 256);
  return b;
}

HttpsPostOptions options_for(const https_test::Server& s) {
  HttpsPostOptions o;
  o.ca_file = s.ca_file();
  o.timeout = std::chrono::seconds(10);
  o.user_agent = "mailreport-test/1";
  return o;
}

#define START_SERVER(name, ...)                        \
  https_test::Server name(__VA_ARGS__);                \
  if (!name.why_not.empty()) {                         \
    if (test::running_in_ci()) FAIL() << name.why_not; \
    GTEST_SKIP() << name.why_not;                      \
  }

TEST(HttpsPost, PostsTheReportWithItsContentTypeAndUserAgent) {
  START_SERVER(server, std::vector<int>{});
  auto poster = make_https_poster(options_for(server));
  const std::string body = binary_body();
  auto out = poster->post(server.url(), "application/tlsrpt+gzip", body);
  EXPECT_EQ(out.status, SubmitStatus::Sent) << out.detail;
  EXPECT_NE(out.detail.find("HTTP 200"), std::string::npos) << out.detail;
  auto req = server.request(0);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->body, body);
  EXPECT_EQ(req->head.rfind("/v1/tlsrpt\n", 0), 0u) << req->head;
  EXPECT_NE(req->head.find("Content-Type: application/tlsrpt+gzip"), std::string::npos)
      << req->head;
  EXPECT_NE(req->head.find("User-Agent: mailreport-test/1"), std::string::npos) << req->head;
  EXPECT_NE(req->head.find("Content-Length: " + std::to_string(body.size())), std::string::npos);
  EXPECT_EQ(req->head.find("Expect:"), std::string::npos) << req->head;
}

TEST(HttpsPost, AnswersMapToOutcomes) {
  START_SERVER(server, std::vector<int>{500, 429, 503, 404, 400, 201});
  auto poster = make_https_poster(options_for(server));
  const std::vector<SubmitStatus> expected = {SubmitStatus::TempFail, SubmitStatus::TempFail,
                                              SubmitStatus::TempFail, SubmitStatus::PermFail,
                                              SubmitStatus::PermFail, SubmitStatus::Sent};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    auto out = poster->post(server.url(), "application/tlsrpt+gzip", "x");
    EXPECT_EQ(out.status, expected[i]) << i << ": " << out.detail;
  }
}

TEST(HttpsPost, AnUntrustedCertificateIsTemporaryAndNothingIsPosted) {
  START_SERVER(server, std::vector<int>{});
  HttpsPostOptions o = options_for(server);
  o.ca_file = server.ca_file().parent_path() / "key.pem";  // not a CA: nothing is trusted
  auto out = make_https_poster(o)->post(server.url(), "application/tlsrpt+gzip", "x");
  EXPECT_EQ(out.status, SubmitStatus::TempFail) << out.detail;
  EXPECT_FALSE(server.request(0));
}

TEST(HttpsPost, ARefusedConnectionIsTemporary) {
  // A port nobody listens on: bound, then closed.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(fd);
  HttpsPostOptions o;
  o.timeout = std::chrono::seconds(5);
  auto out =
      make_https_poster(o)->post("https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/",
                                 "application/tlsrpt+gzip", "x");
  EXPECT_EQ(out.status, SubmitStatus::TempFail) << out.detail;
}

TEST(HttpsPost, OnlyHttpsUrlsArePosted) {
  auto out = make_https_poster({})->post("http://127.0.0.1:1/", "application/tlsrpt+gzip", "x");
  EXPECT_EQ(out.status, SubmitStatus::PermFail) << out.detail;
}

}  // namespace
}  // namespace mailreport::outbound
