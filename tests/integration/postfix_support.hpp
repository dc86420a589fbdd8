// Shared by the integration tests that drive a private Postfix instance
// (postfix-instance.sh): a minimal SMTP client, polling, and reading Authentication-Results
// back from a delivered message.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "mailreport/util/bytes.hpp"

namespace mailreport::test {

inline bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Just enough SMTP (RFC 5321) for smtpd: one command at a time, dot-stuffed DATA.
class Smtp {
 public:
  explicit Smtp(std::uint16_t port) {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{60, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd_ = UniqueFd();
  }
  // The reply's last line ("250 2.0.0 Ok: queued as X"), or what went wrong.
  std::string reply() {
    for (;;) {
      auto eol = buf_.find("\r\n");
      if (eol == std::string::npos) {
        char chunk[4096];
        ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
        if (n <= 0) return "connection lost";
        buf_.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      std::string line = buf_.substr(0, eol);
      buf_.erase(0, eol + 2);
      if (line.size() < 4 || line[3] == ' ') return line;
    }
  }
  std::string command(const std::string& line) {
    send_all(line + "\r\n");
    return reply();
  }
  // MAIL, RCPT, DATA; the reply to the end of data.
  std::string send(const std::string& from, const std::string& to, const std::string& message) {
    for (const auto& [cmd, want] :
         {std::pair{"MAIL FROM:<" + from + ">", "250"}, std::pair{"RCPT TO:<" + to + ">", "250"},
          std::pair{std::string("DATA"), "354"}}) {
      std::string r = command(cmd);
      if (r.rfind(want, 0) != 0) return cmd + ": " + r;
    }
    std::string data;
    std::istringstream in(message);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty() && line.front() == '.') data += '.';  // RFC 5321 §4.5.2
      data += line + "\r\n";
    }
    send_all(data + ".\r\n");
    return reply();
  }
  bool ok() const { return static_cast<bool>(fd_); }

 private:
  void send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  UniqueFd fd_;
  std::string buf_;
};

// The values of the Authentication-Results fields (unfolded) that start with `id`.
inline std::vector<std::string> our_results(const std::string& message, const std::string& id) {
  std::vector<std::string> out;
  std::istringstream in(message.substr(0, message.find("\r\n\r\n")));
  std::string current;
  auto flush = [&] {
    const std::string prefix = "Authentication-Results:";
    if (current.rfind(prefix, 0) == 0) {
      std::string v = current.substr(prefix.size());
      v.erase(0, v.find_first_not_of(" \t"));
      if (v.rfind(id, 0) == 0) out.push_back(v);
    }
    current.clear();
  };
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      current += " " + line.substr(line.find_first_not_of(" \t"));
    } else {
      flush();
      current = line;
    }
  }
  flush();
  return out;
}

}  // namespace mailreport::test
