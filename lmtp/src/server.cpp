// LMTP server: listening sockets, accept loop, one thread per connection, timeouts and a
// graceful stop. See server.hpp.
#include "mailreport/lmtp/server.hpp"
#include "mailreport/util/privileges.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

namespace mailreport::lmtp {

namespace {

using Clock = std::chrono::steady_clock;

Error sys_error(std::string_view what, int err = errno) {
  return make_error(ErrorCode::Io, std::string(what) + ": " + std::strerror(err));
}

constexpr int kBacklog = 128;

std::string local_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// Sends everything (blocking socket with SO_SNDTIMEO); false when the peer is gone.
bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string describe_peer(const sockaddr_storage& ss, socklen_t len, bool is_unix) {
  if (is_unix || ss.ss_family == AF_UNIX) return "unix";
  char host[INET6_ADDRSTRLEN] = {};
  std::uint16_t port = 0;
  if (ss.ss_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "unknown";
}

void set_send_timeout(int fd, std::chrono::seconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::max<std::int64_t>(1, t.count()));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct HostPort {
  std::string host;
  std::string port;
};

// "127.0.0.1:2424", "[::1]:2424", "localhost:2424" (the forms config accepts; port 0 asks
// the kernel for a free port, which only in-process users such as the demo do).
Result<HostPort> split_host_port(std::string_view text) {
  HostPort hp;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error(ErrorCode::Invalid, "lmtp.tcp: bad address '" + std::string(text) + "'");
    }
    hp.host = std::string(text.substr(1, close - 1));
    hp.port = std::string(text.substr(close + 2));
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.substr(0, colon).find(':') != std::string::npos) {
      return make_error(ErrorCode::Invalid, "lmtp.tcp: bad address '" + std::string(text) + "'");
    }
    hp.host = std::string(text.substr(0, colon));
    hp.port = std::string(text.substr(colon + 1));
  }
  if (hp.host.empty() || hp.port.empty() ||
      !std::all_of(hp.port.begin(), hp.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error(ErrorCode::Invalid, "lmtp.tcp: bad address '" + std::string(text) + "'");
  }
  // "localhost" is 127.0.0.1 here, without asking a resolver.
  if (strcasecmp(hp.host.c_str(), "localhost") == 0) hp.host = "127.0.0.1";
  return hp;
}

bool is_loopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;  // RFC 1122 §3.2.1.3
  }
  if (sa->sa_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
    return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
           (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
  }
  return false;
}

}  // namespace

SessionOptions session_options(const config::Config& config) {
  SessionOptions o;
  o.hostname = !config.lmtp.hostname.empty()      ? config.lmtp.hostname
               : !config.report.submitter.empty() ? config.report.submitter
                                                  : local_hostname();
  o.message_size = config.limits.message_size;
  o.line_length = config.limits.line_length;
  o.command_line_length = config.limits.command_line_length;
  o.spool_dir = config.lmtp.spool_dir;
  if (o.spool_dir.empty() && config.store.type == "sqlite") {
    o.spool_dir = config.store.path.parent_path();
  }
  return o;
}

Server::Server(std::shared_ptr<const config::Config> config, ingest::Ingestor& ingestor,
               Logger& logger)
    : config_(std::move(config)),
      ingestor_(ingestor),
      log_(logger),
      options_(session_options(*config_)) {}

Server::~Server() {
  stop();
}

Status Server::listen() {
  if (!listeners_.empty()) return {};
  if (!stop_event_) {
    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return sys_error("eventfd");
    stop_event_ = UniqueFd(efd);
  }
  const auto& lc = config_->lmtp;
  if (lc.unix_socket.empty() && lc.tcp.empty()) {
    return make_error(ErrorCode::Invalid,
                      "neither lmtp.unix-socket nor lmtp.tcp is set: nothing to listen on");
  }
  if (!lc.unix_socket.empty()) {
    if (auto st = listen_unix(lc.unix_socket); !st) return st;
  }
  if (!lc.tcp.empty()) {
    if (auto st = listen_tcp(lc.tcp); !st) {
      listeners_.clear();
      if (!socket_path_.empty()) {
        ::unlink(socket_path_.c_str());
        socket_path_.clear();
      }
      return st;
    }
  }
  return {};
}

Status Server::listen_unix(const std::filesystem::path& path) {
  const std::string p = path.string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (p.size() >= sizeof addr.sun_path) {
    return make_error(ErrorCode::Invalid, "lmtp.unix-socket: path too long for a unix socket (" +
                                              std::to_string(sizeof addr.sun_path - 1) +
                                              " bytes at most): " + p);
  }
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);

  // A socket file left by a previous run is removed; one that a live process answers on is
  // not ours to take over.
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(ErrorCode::Io, p + " exists and is not a socket; not removing it");
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return make_error(ErrorCode::Io, p + ": another process is listening on this socket");
    }
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return sys_error("remove stale " + p);
    log_.info("lmtp", "removed stale socket " + p);
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return sys_error("socket(AF_UNIX)");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return sys_error("bind " + p);
  }
  socket_path_ = path;
  auto fail = [&](Error e) -> Status {
    ::unlink(p.c_str());
    socket_path_.clear();
    return e;
  };
  // Mode and owner before listen(): no client can connect through looser permissions.
  if (::chmod(p.c_str(), config_->lmtp.unix_socket_mode) != 0) return fail(sys_error("chmod " + p));
  const auto& owner = config_->lmtp.unix_socket_owner;
  const auto& group = config_->lmtp.unix_socket_group;
  if (!owner.empty() || !group.empty()) {
    if (::geteuid() == 0) {
      if (auto owned =
              chown_by_name(p, owner, group, "lmtp.unix-socket-owner", "lmtp.unix-socket-group");
          !owned) {
        return fail(std::move(owned).error());
      }
    } else {
      log_.warning("lmtp", "not running as root: " + p + " keeps its owner and group");
    }
  }
  if (::listen(fd.get(), kBacklog) != 0) return fail(sys_error("listen " + p));
  listeners_.push_back({std::move(fd), true});
  log_.info("lmtp", "listening on unix:" + p);
  return {};
}

Status Server::listen_tcp(const std::string& address) {
  auto hp = split_host_port(address);
  if (!hp) return std::move(hp).error();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  in6_addr probe6{};
  in_addr probe4{};
  if (::inet_pton(AF_INET, hp->host.c_str(), &probe4) == 1 ||
      ::inet_pton(AF_INET6, hp->host.c_str(), &probe6) == 1) {
    hints.ai_flags |= AI_NUMERICHOST;
  }
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(hp->host.c_str(), hp->port.c_str(), &hints, &res); rc != 0) {
    return make_error(ErrorCode::Invalid, "lmtp.tcp " + address + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, &::freeaddrinfo);

  const addrinfo* ai = res;
  UniqueFd fd(
      ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
  if (!fd) return sys_error("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ai->ai_family == AF_INET6)
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (!is_loopback(ai->ai_addr)) {
    // The configuration refuses this unless lmtp.allow-non-loopback is set.
    log_.warning("lmtp",
                 "lmtp.tcp " + address + " is not a loopback address: LMTP has no authentication");
  }
  if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) return sys_error("bind " + address);
  if (::listen(fd.get(), kBacklog) != 0) return sys_error("listen " + address);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return sys_error("getsockname");
  }
  port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                   : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  listeners_.push_back({std::move(fd), false});
  log_.info("lmtp", "listening on " + describe_peer(ss, len, false));
  return {};
}

Status Server::start() {
  if (started_) return {};
  if (stopped_) return make_error(ErrorCode::Invalid, "the LMTP server was stopped");
  if (auto st = listen(); !st) return st;
  started_ = true;
  accept_thread_ = std::thread([this] { accept_loop(); });
  return {};
}

std::size_t Server::active_connections() const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(),
                                                [](const auto& c) { return !c->done; }));
}

std::string Server::next_id() {
  // Queue-id-like: the accept time and a counter, in hex (as Postfix's short queue ids).
  char buf[32];
  std::snprintf(buf, sizeof buf, "L%05llX%04X",
                static_cast<unsigned long long>(std::time(nullptr)) & 0xFFFFFull,
                ++counter_ & 0xFFFFu);
  return buf;
}

void Server::reap_finished() {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->done) {
        auto next = std::next(it);
        finished.splice(finished.end(), connections_, it);
        it = next;
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) c->thread.join();
}

void Server::accept_loop() {
  std::vector<pollfd> fds;
  for (const auto& l : listeners_) fds.push_back({l.fd.get(), POLLIN, 0});
  fds.push_back({stop_event_.get(), POLLIN, 0});
  while (!stopping_) {
    int rc = ::poll(fds.data(), fds.size(), 1000);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log_.error("lmtp", std::string("poll: ") + std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    reap_finished();
    if (fds.back().revents != 0 || stopping_) break;
    for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
      if (fds[i].revents & POLLIN) accept_one(fds[i].fd, listeners_[i].is_unix);
    }
  }
}

void Server::accept_one(int listen_fd, bool is_unix) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int cfd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
  if (cfd < 0) {
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      log_.error("lmtp", std::string("accept: ") + std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return;  // EAGAIN, ECONNABORTED, EINTR: nothing to do
  }
  UniqueFd fd(cfd);
  std::string peer = describe_peer(ss, len, is_unix);
  std::lock_guard lock(mu_);
  std::size_t active = static_cast<std::size_t>(std::count_if(
      connections_.begin(), connections_.end(), [](const auto& c) { return !c->done; }));
  if (active >= config_->lmtp.max_connections) {
    // RFC 5321 §3.8 / RFC 3463 X.3.2: not accepting messages now; the client retries.
    std::string r =
        Session::reply(421, "4.3.2", options_.hostname + " too many connections, try again later");
    (void)::send(fd.get(), r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    log_.warning("lmtp", "refused " + peer + ": " + std::to_string(active) +
                             " connections (lmtp.max-connections)");
    return;
  }
  auto conn = std::make_unique<Connection>();
  conn->fd = std::move(fd);
  conn->peer = std::move(peer);
  conn->id = next_id();
  Connection& ref = *conn;
  connections_.push_back(std::move(conn));
  ref.thread = std::thread([this, &ref] { run_connection(ref); });
}

void Server::run_connection(Connection& conn) {
  const int fd = conn.fd.get();
  const auto& lc = config_->lmtp;
  set_send_timeout(fd, lc.idle_timeout);
  log_.debug(conn.id, "connect from " + conn.peer);

  SessionOptions opt = options_;
  opt.client = conn.peer;
  opt.id = conn.id;
  auto cfg = config_;
  Session session(
      opt, [cfg](std::string_view a) { return cfg->report.analysis_addresses.matches(a); },
      ingestor_, log_);
  session.greet();
  bool ok = send_all(fd, session.take_output());

  auto last_read = Clock::now();
  auto data_start = last_read;
  char buf[65536];
  std::string end = "disconnect";
  while (ok && !session.closed()) {
    // Stopping: a client between commands is told to come back later; a message in DATA is
    // allowed to finish (stop() bounds the wait).
    if (stopping_ && !session.in_data()) {
      session.shutdown();
      send_all(fd, session.take_output());
      end = "shutdown";
      break;
    }
    auto deadline = last_read + lc.idle_timeout;
    if (session.in_data()) deadline = std::min(deadline, data_start + lc.data_timeout);
    auto now = Clock::now();
    if (now >= deadline) {
      end = session.in_data() ? "timeout in DATA (nothing acknowledged)" : "idle timeout";
      session.timeout();
      send_all(fd, session.take_output());
      log_.info(conn.id, end + ", closing connection from " + conn.peer);
      break;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_event_.get(), POLLIN, 0}};
    int rc =
        ::poll(fds, session.in_data() ? 1 : 2, static_cast<int>(std::min<long long>(wait, 60000)));
    if (rc < 0) {
      if (errno == EINTR) continue;
      end = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (rc == 0 || (fds[0].revents == 0)) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      end = std::string("recv: ") + std::strerror(errno);
      break;
    }
    if (n == 0) {
      end = session.in_data() ? "lost connection in DATA (nothing acknowledged)" : "disconnect";
      break;
    }
    const bool was_data = session.in_data();
    const auto delivered = session.messages_delivered();
    session.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    last_read = Clock::now();
    if (session.in_data() && (!was_data || session.messages_delivered() != delivered)) {
      data_start = last_read;  // a new DATA phase began
    }
    if (session.has_output()) ok = send_all(fd, session.take_output());
    if (!ok) end = "send failed";
  }
  if (session.closed() && end == "disconnect") end = "quit";
  log_.debug(conn.id, "close " + conn.peer + " (" + end + ")");
  {
    // Close now (the client sees EOF at once); stop() only touches fds of running threads.
    std::lock_guard lock(mu_);
    conn.fd = UniqueFd();
    conn.done = true;
  }
  finished_.notify_all();
}

void Server::stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (stop_event_) {
    std::uint64_t one = 1;
    (void)!::write(stop_event_.get(), &one, sizeof one);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  listeners_.clear();
  if (!socket_path_.empty()) {
    ::unlink(socket_path_.c_str());
  }

  std::unique_lock lock(mu_);
  auto all_done = [&] {
    return std::all_of(connections_.begin(), connections_.end(),
                       [](const auto& c) { return c->done.load(); });
  };
  if (!finished_.wait_for(lock, grace, all_done)) {
    std::size_t left = 0;
    for (auto& c : connections_) {
      if (!c->done) {
        ++left;
        ::shutdown(c->fd.get(), SHUT_RDWR);  // the thread sees EOF and ends
      }
    }
    log_.warning("lmtp", std::to_string(left) +
                             " connection(s) still busy after the grace period: closed "
                             "(their messages were not acknowledged)");
  }
  auto conns = std::move(connections_);
  lock.unlock();
  for (auto& c : conns) c->thread.join();
  if (started_) log_.info("lmtp", "stopped");
}

}  // namespace mailreport::lmtp
