// The LMTP server: listens on a unix socket (lmtp.unix-socket) and/or a TCP address
// (lmtp.tcp, loopback unless lmtp.allow-non-loopback), accepts with poll(), and runs one
// thread per connection that moves bytes between the socket and a Session (session.hpp).
//
// - At most lmtp.max-connections at once; the next client gets "421 4.3.2 too many
//   connections" and is closed (RFC 5321 §3.8: 421 may be sent at any time).
// - lmtp.idle-timeout between reads, lmtp.data-timeout for a whole DATA phase: 421 4.4.2.
// - stop(): stops accepting, answers idle clients 421 4.3.2, lets a message in DATA finish
//   (bounded by a grace period), then closes what is left. A message cut off that way was not
//   acknowledged, so the MTA keeps and retries it.
//
// No process-global state: no signal handlers, no SIGPIPE change (send() uses MSG_NOSIGNAL),
// so that `mailreport demo` can run a Server in-process (127.0.0.1 port 0, bound_port()).
// Privileges are the caller's business: listen() binds, the daemon drops privileges, then
// start() accepts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/ingest/ingest.hpp"
#include "mailreport/lmtp/session.hpp"
#include "mailreport/util/bytes.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::lmtp {

// The session settings that follow from the configuration (limits.*, lmtp.hostname,
// lmtp.spool-dir, defaulting to the store's directory for SQLite).
SessionOptions session_options(const config::Config& config);

class Server {
 public:
  // `ingestor` and `logger` must outlive the server.
  Server(std::shared_ptr<const config::Config> config, ingest::Ingestor& ingestor, Logger& logger);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listening sockets. A stale unix socket file is removed first (one that some
  // process still answers on is an error); the socket gets lmtp.unix-socket-mode and, when
  // running as root, lmtp.unix-socket-owner/-group. Fails when neither socket is configured.
  Status listen();
  // Starts accepting (calls listen() first if it was not called).
  Status start();
  // Idempotent. Waits up to `grace` for messages in DATA to finish.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(30));

  // The bound TCP port (useful with port 0), 0 without a TCP listener.
  std::uint16_t bound_port() const noexcept { return port_; }
  // The unix socket path, "" without one.
  const std::filesystem::path& socket_path() const noexcept { return socket_path_; }
  std::size_t active_connections() const;

 private:
  struct Connection {
    UniqueFd fd;
    std::string peer;
    std::string id;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  Status listen_unix(const std::filesystem::path& path);
  Status listen_tcp(const std::string& address);
  void accept_loop();
  void accept_one(int listen_fd, bool is_unix);
  void run_connection(Connection& conn);
  void reap_finished();
  std::string next_id();

  std::shared_ptr<const config::Config> config_;
  ingest::Ingestor& ingestor_;
  Logger& log_;
  SessionOptions options_;

  struct Listener {
    UniqueFd fd;
    bool is_unix = false;
  };
  std::vector<Listener> listeners_;
  std::uint16_t port_ = 0;
  std::filesystem::path socket_path_;  // created by us, removed by stop()
  UniqueFd stop_event_;                // eventfd: readable once stop() began

  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  std::uint32_t counter_ = 0;

  mutable std::mutex mu_;
  std::condition_variable finished_;
  std::list<std::unique_ptr<Connection>> connections_;
};

}  // namespace mailreport::lmtp
