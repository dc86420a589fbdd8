#include "mailreport/lmtp/client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mailreport::lmtp {

namespace {

Error sys_error(std::string_view what) {
  return make_error(ErrorCode::Io, std::string(what) + ": " + std::strerror(errno));
}

void set_timeouts(int fd, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

Result<Client> Client::connect_tcp(const std::string& host, std::uint16_t port,
                                   std::chrono::seconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return make_error(ErrorCode::Io, host + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, &::freeaddrinfo);
  Error last = make_error(ErrorCode::Io, host + ": no address");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last = sys_error("socket");
      continue;
    }
    set_timeouts(fd.get(), timeout);
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return Client(std::move(fd));
    last = sys_error("connect " + host + ":" + service);
  }
  return last;
}

Result<Client> Client::connect_unix(const std::filesystem::path& path,
                                    std::chrono::seconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof addr.sun_path) {
    return make_error(ErrorCode::Io, path.string() + ": socket path too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  set_timeouts(fd.get(), timeout);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return sys_error("connect " + path.string());
  }
  return Client(std::move(fd));
}

Status Client::send_all(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("send");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<Reply> Client::read_reply() {
  Reply reply;
  for (;;) {
    auto eol = buf_.find('\n');
    if (eol == std::string::npos) {
      char chunk[4096];
      ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return sys_error("recv");
      if (n == 0) return make_error(ErrorCode::Io, "connection closed by the server");
      buf_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    std::string line = buf_.substr(0, eol);
    buf_.erase(0, eol + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() < 3) return make_error(ErrorCode::Invalid, "malformed reply: " + line);
    reply.code = std::atoi(line.substr(0, 3).c_str());
    if (!reply.text.empty()) reply.text += '\n';
    reply.text += line.size() > 4 ? line.substr(4) : std::string();
    if (line.size() < 4 || line[3] != '-') return reply;  // last line of the reply
  }
}

Status Client::hello(std::string_view name) {
  auto greeting = read_reply();
  if (!greeting) return std::move(greeting).error();
  if (greeting->code != 220) return make_error(ErrorCode::Io, "greeting: " + greeting->text);
  if (auto s = send_all("LHLO " + std::string(name) + "\r\n"); !s) return s;
  auto lhlo = read_reply();
  if (!lhlo) return std::move(lhlo).error();
  if (!lhlo->positive()) return make_error(ErrorCode::Io, "LHLO: " + lhlo->text);
  return {};
}

Result<std::vector<RecipientReply>> Client::deliver(std::string_view mail_from,
                                                    const std::vector<std::string>& rcpt_to,
                                                    std::string_view message) {
  if (auto s = send_all("MAIL FROM:<" + std::string(mail_from) + ">\r\n"); !s) return std::move(s).error();
  auto mail = read_reply();
  if (!mail) return std::move(mail).error();
  if (!mail->positive()) {
    return make_error(ErrorCode::Io, "MAIL refused: " + std::to_string(mail->code) + " " + mail->text);
  }
  std::vector<RecipientReply> out;
  std::vector<std::size_t> accepted;  // indexes into out
  for (const auto& rcpt : rcpt_to) {
    if (auto s = send_all("RCPT TO:<" + rcpt + ">\r\n"); !s) return std::move(s).error();
    auto r = read_reply();
    if (!r) return std::move(r).error();
    if (r->positive()) accepted.push_back(out.size());
    out.push_back({rcpt, *r});
  }
  if (accepted.empty()) {
    if (auto s = send_all("RSET\r\n"); !s) return std::move(s).error();
    if (auto r = read_reply(); !r) return std::move(r).error();
    return out;
  }
  if (auto s = send_all("DATA\r\n"); !s) return std::move(s).error();
  auto data = read_reply();
  if (!data) return std::move(data).error();
  if (data->code != 354) {
    for (auto i : accepted) out[i].reply = *data;
    return out;
  }
  // Dot-stuffing (RFC 5321 §4.5.2) and CRLF line endings, sent in large chunks.
  std::string wire;
  wire.reserve(message.size() + message.size() / 50 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (line_start && c == '.') wire += '.';
    if (c == '\n' && (i == 0 || message[i - 1] != '\r')) wire += '\r';
    wire += c;
    line_start = c == '\n';
  }
  if (!line_start) wire += "\r\n";
  wire += ".\r\n";
  if (auto s = send_all(wire); !s) return std::move(s).error();
  for (auto i : accepted) {
    auto r = read_reply();
    if (!r) return std::move(r).error();
    out[i].reply = *r;
  }
  return out;
}

void Client::quit() {
  if (send_all("QUIT\r\n")) (void)read_reply();
}

}  // namespace mailreport::lmtp
