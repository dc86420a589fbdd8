// milter/libmilter: the one place that talks to libmilter (Sendmail's milter library, a process
// singleton). Its callbacks are one-line trampolines into a Session per MTA connection; no
// exception crosses into C (one in a step without a reply makes the message's end-of-message
// answer 451 4.3.0; one at end of message answers it directly), and every step a session
// never answers is negotiated as "no reply" (SMFIP_NR_*), so that headers and body chunks cost
// no round trip.
//
// Negotiation (xxfi_negotiate): actions SMFIF_ADDHDRS, SMFIF_CHGHDRS, SMFIF_QUARANTINE (and
// SMFIF_SETSYMLIST, without which an MTA ignores the macro lists below), only those the MTA
// offers; protocol: no DATA, no end of headers (SMFIP_NOEOH: the session starts DKIM at the
// first body chunk or at end of message instead, which saves a milter command per message) and
// no unknown commands, no reply for connect/HELO/MAIL/RCPT/headers/body (and end of headers,
// for an MTA that sends it anyway), and the header values' leading space kept when the MTA can
// (SMFIP_HDR_LEADSPC, so DKIM's simple canonicalization sees the header as sent). Macros asked
// for: "j {daemon_name}" at connect, "i {auth_authen}" at MAIL, "i" at end of message.
//
// The delayed-ACK trap: at end of message libmilter writes the header change and the final
// reply as two separate packets. Over TCP with Nagle on, the second waits until the MTA
// acknowledges the first, and the MTA's kernel delays that ACK (40 ms on Linux) because the
// MTA, waiting for the reply, has nothing to send. libmilter never sets TCP_NODELAY, so we set
// it on its listening socket after smfi_opensocket(); Linux gives accepted sockets the
// listener's TCP_NODELAY.
//
// Not done: smfi_setmlreply (one-line replies suffice), SMFIS_SKIP (body chunks cost no
// round trip already).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "mailreport/milter/session.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::milter {

// Makes the session of each new MTA connection.
class SessionFactory {
 public:
  virtual ~SessionFactory() = default;
  // Called from libmilter's connection threads, concurrently.
  virtual std::unique_ptr<Session> create(Actions& actions, SessionOptions options) = 0;
};

struct ListenOptions {
  std::string socket;               // libmilter syntax: "unix:/path", "inet:PORT@HOST", ...
  std::filesystem::path unix_path;  // the path of a unix socket, "" for inet
  mode_t mode = 0660;
  std::string owner;  // "" = keep
  std::string group;
  std::chrono::seconds timeout{7200};
};

class Libmilter {
 public:
  // libmilter is a process singleton: a second instance throws std::logic_error. `factory` and
  // `log` must outlive it.
  Libmilter(SessionFactory& factory, Logger& log);
  ~Libmilter();
  Libmilter(const Libmilter&) = delete;
  Libmilter& operator=(const Libmilter&) = delete;

  // Registers the filter and opens the socket (a stale unix socket is removed; one a live
  // process answers on is an error), with its mode and owner, TCP_NODELAY for inet. Call once,
  // before dropping privileges.
  Status open(const ListenOptions& options);
  // smfi_main(): serves until stop() (or a fatal libmilter error). libmilter starts a thread
  // that takes SIGHUP, SIGTERM and SIGINT as "stop": the caller should make sure they are
  // delivered elsewhere (see main.cpp). Returns once the listener has closed; sessions may
  // still be running (see wait_idle()).
  Status run();
  // Stops accepting connections; run() returns soon after. Thread-safe; call it once.
  void stop();
  // Waits until no session is open, at most `timeout`; true when none is.
  bool wait_idle(std::chrono::milliseconds timeout);
  std::size_t open_sessions() const;

  // For the trampolines.
  struct Callbacks;

 private:
  SessionFactory& factory_;
  Logger& log_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::size_t sessions_ = 0;
  bool opened_ = false;
  std::string wake_addr_;  // the listener's sockaddr, to wake libmilter's select() on stop()
};

}  // namespace mailreport::milter
