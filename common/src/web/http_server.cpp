// HttpServer over libmicrohttpd (RFC 9110 / RFC 9112 semantics as libmicrohttpd implements
// them; this file only adapts its C interface to Request / Response / Handler).
//
// Threading: MHD_USE_INTERNAL_POLLING_THREAD with a thread pool of ServerOptions::threads
// (MHD_OPTION_THREAD_POOL_SIZE), not a thread per connection. The dashboard's requests are
// short store reads, and its clients are one browser, a Prometheus scraper and the odd curl;
// a pool keeps the thread count fixed however many connections are open (the connection limit
// bounds sockets, not threads), so a burst of idle keep-alive connections cannot spawn
// max_connections threads each holding a store connection. The price is that a slow handler
// holds up the other connections of its pool thread, which a pool of a few threads absorbs.
//
// Bodies: accumulated up to max_body; a Content-Length above it is answered 413 before the
// body is read (a client sending "Expect: 100-continue" is never told to continue); a chunked
// body that grows past it is read to its end and discarded, then answered 413.
// HEAD: the handler sees "HEAD" and answers as for GET; libmicrohttpd sends the headers only.
//
// Exceptions never cross into libmicrohttpd: each callback catches everything; a handler that
// throws answers 500.
//
// Not done: TLS (a reverse proxy in front: docs/dashboard.md), chunked or streamed responses,
// host names in the listen address other than "localhost" (no resolver is asked).
#include "mailreport/web/http_server.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <exception>
#include <string_view>

namespace mailreport::web {

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string Request::arg(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string() : it->second;
}

Response Response::json(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response Response::text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

Response Response::error(int status, std::string_view message) {
  // {"error": "..."} with the message escaped as a JSON string (RFC 8259 §7). This one tiny
  // object is built here so that http_server does not need a JSON library; the escaping
  // covers every character RFC 8259 requires to be escaped.
  std::string body = "{\"error\": \"";
  for (unsigned char c : message) {
    switch (c) {
      case '"': body += "\\\""; break;
      case '\\': body += "\\\\"; break;
      case '\n': body += "\\n"; break;
      case '\r': body += "\\r"; break;
      case '\t': body += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          body += "\\u00";
          body += hex[c >> 4];
          body += hex[c & 15];
        } else {
          body += static_cast<char>(c);
        }
    }
  }
  body += "\"}";
  return json(status, std::move(body));
}

namespace {

struct DaemonDeleter {
  void operator()(MHD_Daemon* d) const noexcept { MHD_stop_daemon(d); }
};
using DaemonPtr = std::unique_ptr<MHD_Daemon, DaemonDeleter>;

struct ResponseDeleter {
  void operator()(MHD_Response* r) const noexcept { MHD_destroy_response(r); }
};
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseDeleter>;

// One request's state between libmicrohttpd's calls (its *req_cls), freed when the request
// completes (MHD_OPTION_NOTIFY_COMPLETED).
struct PendingRequest {
  std::string body;
  bool too_large = false;
};

struct ParsedAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  bool ipv6 = false;
};

Result<ParsedAddress> parse_listen(const std::string& listen) {
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return make_error(ErrorCode::Invalid, "listen address \"" + listen + "\": want [IPV6]:PORT");
    }
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || listen.find(':') != colon) {
      return make_error(ErrorCode::Invalid,
                        "listen address \"" + listen + "\": want HOST:PORT or [IPV6]:PORT");
    }
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    return make_error(ErrorCode::Invalid, "listen address \"" + listen + "\": bad port");
  }
  auto port = static_cast<std::uint16_t>(std::stoul(port_text));
  if (host == "localhost") host = "127.0.0.1";
  ParsedAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    out.ipv6 = true;
  } else {
    return make_error(ErrorCode::Invalid,
                      "listen address \"" + listen + "\": \"" + host + "\" is not an IP address");
  }
  return out;
}

std::string format_peer(const sockaddr* addr) {
  if (addr == nullptr) return {};
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof buf);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

std::string lower(std::string s) {
  for (auto& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

class MhdServer final : public HttpServer {
 public:
  MhdServer(Handler handler, std::size_t max_body)
      : handler_(std::move(handler)), max_body_(max_body) {}
  ~MhdServer() override { daemon_.reset(); }  // MHD_stop_daemon joins the pool threads

  std::uint16_t port() const noexcept override { return port_; }

  Status start(const ServerOptions& options) {
    auto address = parse_listen(options.listen);
    if (!address) return std::move(address).error();
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (address->ipv6) flags |= MHD_USE_IPv6;
    unsigned threads = options.threads == 0 ? 1 : options.threads;
    MHD_OptionItem ops[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &address->storage},
        {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(options.max_connections), nullptr},
        {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(options.timeout.count()), nullptr},
        {MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(threads), nullptr},
        {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&MhdServer::on_completed), this},
        {MHD_OPTION_END, 0, nullptr},
    };
    // MHD_OPTION_ARRAY keeps the option list typed data instead of a C varargs list.
    MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, &MhdServer::on_request, this,
                                     MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (d == nullptr) {
      return make_error(ErrorCode::Io,
                        "cannot listen on " + options.listen + ": " + std::strerror(errno));
    }
    daemon_.reset(d);
    // Port 0: the port the kernel chose, read from the listening socket.
    const MHD_DaemonInfo* info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (info == nullptr ||
        getsockname(info->listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      return make_error(ErrorCode::Io, "cannot read the bound port of " + options.listen);
    }
    port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return {};
  }

 private:
  static MHD_Result queue(MHD_Connection* connection, const Response& response) {
    ResponsePtr r(MHD_create_response_from_buffer(
        response.body.size(), const_cast<char*>(response.body.data()), MHD_RESPMEM_MUST_COPY));
    if (!r) return MHD_NO;
    if (!response.content_type.empty()) {
      MHD_add_response_header(r.get(), MHD_HTTP_HEADER_CONTENT_TYPE, response.content_type.c_str());
    }
    for (const auto& [name, value] : response.headers) {
      MHD_add_response_header(r.get(), name.c_str(), value.c_str());
    }
    return MHD_queue_response(connection, static_cast<unsigned>(response.status), r.get());
  }

  static MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* map = static_cast<std::map<std::string, std::string>*>(cls);
    try {
      (*map)[key == nullptr ? std::string() : std::string(key)] = value == nullptr ? "" : value;
    } catch (...) {
      return MHD_NO;
    }
    return MHD_YES;
  }

  static MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* map = static_cast<std::map<std::string, std::string>*>(cls);
    try {
      (*map)[lower(key == nullptr ? std::string() : std::string(key))] =
          value == nullptr ? "" : value;
    } catch (...) {
      return MHD_NO;
    }
    return MHD_YES;
  }

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/, const char* upload_data,
                               size_t* upload_data_size, void** req_cls) noexcept {
    try {
      return static_cast<MhdServer*>(cls)->handle(connection, url, method, upload_data,
                                                  upload_data_size, req_cls);
    } catch (...) {
      return MHD_NO;  // out of memory building the answer: libmicrohttpd closes the connection
    }
  }

  static void on_completed(void* /*cls*/, MHD_Connection*, void** req_cls,
                           MHD_RequestTerminationCode) noexcept {
    delete static_cast<PendingRequest*>(*req_cls);
    *req_cls = nullptr;
  }

  MHD_Result handle(MHD_Connection* connection, const char* url, const char* method,
                    const char* upload_data, size_t* upload_data_size, void** req_cls) {
    auto* pending = static_cast<PendingRequest*>(*req_cls);
    if (pending == nullptr) {
      // The first call: headers only. RFC 9110 §15.5.14: refuse a body announced too large
      // before reading it.
      const char* length =
          MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      if (length != nullptr) {
        char* end = nullptr;
        unsigned long long n = std::strtoull(length, &end, 10);
        if (end != length && n > max_body_) {
          return queue(connection, Response::error(413, "request body too large"));
        }
      }
      *req_cls = new PendingRequest();
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      if (!pending->too_large) {
        if (pending->body.size() + *upload_data_size > max_body_) {
          pending->too_large = true;
          pending->body.clear();
        } else {
          pending->body.append(upload_data, *upload_data_size);
        }
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (pending->too_large) {
      return queue(connection, Response::error(413, "request body too large"));
    }

    Request request;
    request.method = method == nullptr ? "" : method;
    request.path = url == nullptr ? "" : url;
    request.body = std::move(pending->body);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &MhdServer::collect,
                              &request.query);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &MhdServer::collect_header,
                              &request.headers);
    if (const MHD_ConnectionInfo* info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) {
      request.remote = format_peer(info->client_addr);
    }

    Response response;
    try {
      response = handler_(request);
    } catch (...) {
      // The handler's own bug or resource failure: the client learns only that it failed
      // (HttpServer takes no logger; a handler that wants a log line catches first).
      response = Response::error(500, "internal error");
    }
    return queue(connection, response);
  }

  Handler handler_;
  std::size_t max_body_;
  std::uint16_t port_ = 0;
  DaemonPtr daemon_;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ServerOptions& options,
                                                      Handler handler) {
  auto server = std::make_unique<MhdServer>(std::move(handler), options.max_body);
  if (auto started = server->start(options); !started) return std::move(started).error();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace mailreport::web
