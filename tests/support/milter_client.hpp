// A small milter protocol client (the MTA's side, version 6, as Sendmail and Postfix speak it)
// for the tests and the benchmarks: option negotiation, CONNECT, HELO, MAIL, RCPT, DATA,
// HEADER, EOH, BODY, end of message, ABORT, QUIT, and macros before each of them, over a unix
// socket or TCP. It honours the steps the filter asked to skip (SMFIP_NO*) and the replies it
// said it will not send (SMFIP_NR_*), and returns the filter's modifications (add/insert/
// change header, quarantine, recipients, sender, body) with its final reply.
//
// Debian has no library for this side of the protocol (libmilter is the filter's side); the
// constants come from libmilter's <libmilter/mfdef.h>. Like Postfix, the client buffers the
// packets it sends and writes them in one go when it needs an answer, so that the filter sees
// the same segments it would see behind an MTA.
//
// Not done: SMFIC_UNKNOWN, SMFIR_SETSYMLIST lists in the negotiation (read and ignored), a
// data size above 64 KiB per packet (SMFIP_MDS_* are not offered).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::test {

// name → value pairs sent with SMFIC_MACRO before one command ("j", "{daemon_name}", "i", ...).
using MilterMacros = std::vector<std::pair<std::string, std::string>>;

// What the filter answered to one command.
enum class MilterAction {
  Continue,   // 'c'
  Accept,     // 'a': no more of this message
  Reject,     // 'r'
  TempFail,   // 't'
  Discard,    // 'd'
  ReplyCode,  // 'y': `text` holds "550 5.7.1 ..." as the filter set it
  Skip,       // 's': no more body chunks
  ConnFail,   // 'f'
  Shutdown,   // '4'
};
const char* to_string(MilterAction a) noexcept;

struct MilterReply {
  MilterAction action = MilterAction::Continue;
  std::string text;  // ReplyCode only
  char command = 0;  // the SMFIC_* command it answered ('M', 'R', 'E', ...)
};

struct MilterModification {
  enum class Kind {
    AddHeader,     // 'h' name, value
    InsertHeader,  // 'i' index, name, value
    ChangeHeader,  // 'm' index (1-based among fields of that name), name, value ("" deletes)
    Quarantine,    // 'q' value = reason
    AddRcpt,       // '+' / '2' value = address (name = ESMTP args for '2')
    DelRcpt,       // '-' value = address
    ChangeFrom,    // 'e' value = address, name = ESMTP args
    ReplaceBody,   // 'b' value = one chunk
  };
  Kind kind = Kind::AddHeader;
  std::uint32_t index = 0;
  std::string name;
  std::string value;
};

struct MilterResult {
  MilterReply reply;  // the final one (end of message, or the one that ended it early)
  std::vector<MilterModification> modifications;
  std::vector<std::string> rejected_rcpts;  // recipients the filter refused
  // The headers the filter added or inserted, as (name, value), in the order sent.
  std::vector<std::pair<std::string, std::string>> added_headers() const;
};

// One SMTP session as the MTA describes it to the filter.
struct MilterSession {
  std::string client_name = "client.example";  // reverse DNS name ("[192.0.2.1]" if none)
  std::string client_addr = "192.0.2.1";       // IPv4 or IPv6 literal; "" = unknown family
  std::uint16_t client_port = 40000;
  std::string helo = "client.example";
  MilterMacros connect_macros;  // e.g. {"j", "mx.example"}, {"{daemon_name}", "smtpd"}
  MilterMacros helo_macros;
};

// One message of the session.
struct MilterMessage {
  std::string mail_from = "<sender@example.com>";  // as in the SMTP command, with < >
  std::vector<std::string> mail_args;              // ESMTP parameters ("SIZE=100")
  std::vector<std::string> rcpt_to = {"<rcpt@example.net>"};
  std::vector<std::pair<std::string, std::string>> headers;  // values without the leading SP;
                                                             // folds as "\n\t" (MTA style)
  std::string body;                                          // CRLF line ends
  MilterMacros mail_macros;  // e.g. {"{auth_authen}", "user"}, {"{mail_addr}", ...}
  MilterMacros rcpt_macros;  // sent before every RCPT
  MilterMacros eom_macros;   // e.g. {"i", "4AbCdE"} (queue id)

  // Splits an RFC 5322 message (CRLF or LF) into headers and body the way an MTA hands them
  // to a milter: header values without the space after the colon, folded lines joined with
  // "\n", the body with CRLF line ends.
  static MilterMessage from_rfc5322(std::string_view raw);
};

class MilterClient {
 public:
  // Connects to "unix:/path", "local:/path", "/path", "inet:PORT@HOST" or "inet6:PORT@HOST"
  // (HOST numeric or "localhost"). Every later read and write fails after `timeout`.
  static Result<MilterClient> connect(std::string_view address,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  MilterClient(MilterClient&&) noexcept = default;
  MilterClient& operator=(MilterClient&&) noexcept = default;
  ~MilterClient() = default;

  // SMFIC_OPTNEG: offers protocol version 6, `actions` and the protocol `steps` an MTA can
  // skip; fails when the filter asks for what was not offered.
  Status negotiate(std::uint32_t actions = 0x1FF, std::uint32_t steps = 0x1FFFFF);
  std::uint32_t filter_version() const noexcept { return version_; }
  std::uint32_t filter_actions() const noexcept { return actions_; }
  std::uint32_t filter_protocol() const noexcept { return protocol_; }

  // SMFIC_CONNECT then SMFIC_HELO (each with its macros). A reply other than Continue means
  // the filter wants nothing more of this session (the MTA then applies it to the session).
  Result<MilterReply> open_session(const MilterSession& session);

  // One message: MAIL, RCPT..., DATA, HEADER..., EOH, BODY..., end of body. Stops early when
  // the filter decides before the end (accept, reject, discard, ...). After a message the
  // session can carry another one.
  Result<MilterResult> send_message(const MilterMessage& message);

  Status abort();  // SMFIC_ABORT: forget the current message
  Status quit();   // SMFIC_QUIT; the filter closes the connection

 private:
  explicit MilterClient(UniqueFd fd) : fd_(std::move(fd)) {}

  void put(char command, std::string_view data = {});
  void put_macros(char command, const MilterMacros& macros);
  Status flush();
  // Reads one packet (flushing first): its command byte and data.
  Result<std::pair<char, std::string>> read_packet();
  // Reads packets until a reply to `command` (progress packets skipped); modifications are
  // collected into `mods` (only allowed at end of message).
  Result<MilterReply> read_reply(char command, std::vector<MilterModification>* mods = nullptr);
  // Sends `command`, and reads its reply unless the filter said it sends none (`no_reply`).
  Result<MilterReply> step(char command, std::string_view data, std::uint32_t no_reply);

  UniqueFd fd_;
  std::string out_;
  std::string in_;
  std::size_t in_pos_ = 0;
  std::uint32_t version_ = 0;
  std::uint32_t actions_ = 0;
  std::uint32_t protocol_ = 0;
};

}  // namespace mailreport::test
