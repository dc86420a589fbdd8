// HttpServer: a small HTTP/1.1 server over libmicrohttpd (its headers are included in
// http_server.cpp only), for mailreport serve's dashboard, JSON API and /metrics, and for the
// tests' loopback webhook receivers. One handler takes every request; it runs on the server's
// worker threads and must be thread-safe. Exceptions never cross into libmicrohttpd: a handler
// that throws answers 500.
//
// Not done: TLS (put a reverse proxy in front: docs/dashboard.md), chunked responses,
// keep-alive tuning.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mailreport/util/result.hpp"

namespace mailreport::web {

struct Request {
  std::string method;  // "GET", "HEAD", "POST", ...
  std::string path;    // decoded, without the query string
  std::map<std::string, std::string> query;    // decoded query arguments (the last one wins)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;  // the peer's address
  std::string header(const std::string& lower_name) const;  // "" when absent
  std::string arg(const std::string& name) const;           // "" when absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static Response json(int status, std::string body);
  static Response text(int status, std::string body);
  // {"error": message}
  static Response error(int status, std::string_view message);
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // "HOST:PORT", "[IPV6]:PORT"; port 0 = any free port
  unsigned max_connections = 64;
  std::chrono::seconds timeout{30};    // idle connection timeout
  std::size_t max_body = 1 << 20;      // larger request bodies get 413
  unsigned threads = 2;                // worker threads
};

class HttpServer {
 public:
  // Binds and starts serving; Io when the address cannot be bound, Invalid when it does not
  // parse.
  static Result<std::unique_ptr<HttpServer>> start(const ServerOptions& options, Handler handler);
  virtual ~HttpServer() = default;  // stops: in-flight requests finish first
  virtual std::uint16_t port() const noexcept = 0;
};

}  // namespace mailreport::web
