// A minimal LMTP client (RFC 2033), the sending side of what Postfix's lmtp(8) does: LHLO,
// then per message MAIL, RCPT..., DATA with dot-stuffing, and one reply per accepted
// recipient. Used by `mailreport demo` to deliver the sample reports and by the LMTP
// benchmark; not a general-purpose SMTP client (no TLS, no AUTH, no pipelining).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::lmtp {

struct Reply {
  int code = 0;
  std::string text;  // all lines, joined with "\n", without the codes
  bool positive() const noexcept { return code >= 200 && code < 300; }
};

struct RecipientReply {
  std::string recipient;
  Reply reply;  // the RCPT reply if it was refused, else the post-DATA reply
};

class Client {
 public:
  static Result<Client> connect_tcp(const std::string& host, std::uint16_t port,
                                    std::chrono::seconds timeout = std::chrono::seconds(60));
  static Result<Client> connect_unix(const std::filesystem::path& path,
                                     std::chrono::seconds timeout = std::chrono::seconds(60));

  // Reads the greeting and sends LHLO.
  Status hello(std::string_view name);
  // Delivers one message; the result has one entry per recipient, in order. An error means
  // the transaction itself failed (MAIL refused, connection lost).
  Result<std::vector<RecipientReply>> deliver(std::string_view mail_from,
                                              const std::vector<std::string>& rcpt_to,
                                              std::string_view message);
  void quit();

 private:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  Status send_all(std::string_view bytes);
  Result<Reply> read_reply();

  UniqueFd fd_;
  std::string buf_;
};

}  // namespace mailreport::lmtp
