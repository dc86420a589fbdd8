// The LMTP protocol engine (RFC 2033 on top of RFC 5321 syntax), without sockets: it is fed
// the bytes a client sent and produces the bytes to send back. The server (server.hpp) moves
// bytes between a socket and a Session; tests and the fuzz target drive a Session directly.
//
// Implemented: LHLO (HELO/EHLO are refused, RFC 2033 §4.1), MAIL (SIZE, BODY, SMTPUTF8, AUTH,
// ENVID, RET), RCPT (NOTIFY, ORCPT), DATA with one reply per accepted RCPT (RFC 2033 §4.2),
// RSET, NOOP, VRFY (252), QUIT; PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034/3463),
// 8BITMIME (RFC 6152), SIZE (RFC 1870), SMTPUTF8 (RFC 6531) are advertised. Limits on command
// line length, DATA line length, message size and recipients per message.
// Not done: BDAT/CHUNKING (Postfix's LMTP client never sends it), DSN, XFORWARD, STARTTLS,
// AUTH — the receiver sits behind the local MTA on a unix socket or loopback.
//
// A 250 after the final "." means the message is durably committed: the reply is produced
// only after Ingestor::ingest() returned a value. A store failure answers 451 4.3.0 so that
// the MTA retries. Nothing is added to the message: the bytes stored are the bytes received
// (after dot-unstuffing), Return-Path and Delivered-To as the MTA sent them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/ingest/ingest.hpp"
#include "mailreport/lmtp/spool.hpp"
#include "mailreport/util/log.hpp"

namespace mailreport::lmtp {

struct SessionOptions {
  std::string hostname = "localhost";        // greeting and LHLO reply
  std::uint64_t message_size = 50ull << 20;  // limits.message-size
  std::size_t line_length = 65536;           // limits.line-length (DATA, without CRLF)
  std::size_t command_line_length = 4096;    // limits.command-line-length (without CRLF)
  std::size_t max_recipients = 1000;         // per transaction; RFC 5321 §4.5.3.1.8: ≥100
  std::size_t memory_spool = Spool::kDefaultMemoryLimit;  // larger messages spill to a file
  std::filesystem::path spool_dir;                        // "" = the system temporary directory
  std::string client = "unknown";                         // peer, for the envelope and logs
  std::string id = "lmtp";                                // log context (queue-id-like)
};

// Whether a recipient address (without angle brackets) is one of our report mailboxes.
using RecipientFilter = std::function<bool(std::string_view address)>;

class Session {
 public:
  enum class Phase { Command, Data, Closed };

  Session(SessionOptions options, RecipientFilter accept_recipient, ingest::Ingestor& ingestor,
          Logger& logger);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Queues the "220 HOSTNAME LMTP mailreport ready" greeting.
  void greet();
  // Processes every complete command (and DATA line) in the input, in order (pipelining);
  // a partial line waits for the next call. Ignores input once the session is closed.
  void feed(std::string_view bytes);
  // The client was silent too long (idle between commands, or the DATA phase took too long):
  // queues 421 4.4.2 and closes; a message in progress is discarded (nothing was acknowledged).
  void timeout();
  // The server is shutting down: queues 421 4.3.2 and closes. Call it outside DATA (a message
  // in DATA is let finish first); an open MAIL/RCPT transaction is simply dropped.
  void shutdown();

  // Bytes to send to the client; the session forgets them.
  std::string take_output();
  bool has_output() const noexcept { return !out_.empty(); }

  Phase phase() const noexcept { return phase_; }
  bool closed() const noexcept { return phase_ == Phase::Closed; }
  bool in_data() const noexcept { return phase_ == Phase::Data; }
  // Between commands, with no partial command line buffered (a MAIL/RCPT transaction may be
  // open: nothing of it was acknowledged yet).
  bool idle() const noexcept;

  // DATA phases ended by the final "." so far (stored or refused).
  std::size_t messages_delivered() const noexcept { return delivered_; }

  // One reply line, "CODE ENH text\r\n"; exposed for the server's own replies (421 when
  // there are too many connections).
  static std::string reply(int code, std::string_view enhanced, std::string_view text);

 private:
  struct Transaction {
    bool active = false;  // MAIL accepted
    std::string mail_from;
    std::vector<std::string> rcpt_to;  // accepted recipients, in order, duplicates kept
  };
  struct DataState {
    bool discarding_line = false;  // inside a line longer than line_length
    bool line_too_long = false;
    bool too_big = false;
  };

  void process();
  bool process_command_line();
  bool process_data();
  void handle_command(std::string_view line);
  void handle_data_line(std::string_view line);  // without the terminating LF
  void end_of_data();

  void cmd_lhlo(std::string_view arg);
  void cmd_mail(std::string_view arg);
  void cmd_rcpt(std::string_view arg);
  void cmd_data(std::string_view arg);

  void say(int code, std::string_view enhanced, std::string_view text);
  void reset_transaction();

  SessionOptions opt_;
  RecipientFilter accept_;
  ingest::Ingestor& ingestor_;
  Logger& log_;

  Phase phase_ = Phase::Command;
  bool greeted_lhlo_ = false;
  bool discarding_command_ = false;  // inside an over-long command line
  std::string in_;                   // unprocessed input
  std::size_t in_pos_ = 0;           // first unprocessed byte of in_
  std::string out_;
  Transaction tx_;
  DataState data_;
  Spool spool_;
  std::size_t delivered_ = 0;
};

// Feeds arbitrary bytes to a Session (with small limits and an ingestor that reads and
// discards what it gets) and throws the replies away. The entry point of the fuzz target;
// `bytes` are split into chunks as the first byte says, to exercise partial lines.
void fuzz_session(std::string_view bytes);

}  // namespace mailreport::lmtp
