// milter/session: what mailreport-milter does with one MTA connection, knowing nothing about
// libmilter (libmilter.cpp wraps the protocol and calls these events; tests call them directly
// with a recording Actions).
//
// Per message:
// - SPF (RFC 7208) of the MAIL FROM and HELO identities, checked at end of message, not at
//   MAIL FROM: by then we know whether the message is evaluated at all (recipients that are all
//   report mailboxes still are, but a trusted upstream verdict or an aborted transaction makes
//   the lookups needless), no lookups are spent on transactions that die at RCPT (unknown
//   users, spam traps: a cheap way to make us query DNS), and a decision cannot come earlier
//   anyway because DMARC needs the From header and DKIM. Both cost the same wall time for a
//   message that reaches end of data: libmilter's callbacks are synchronous.
// - DKIM (RFC 6376): header fields are kept until end of headers, then fed to the verifier
//   (unless a trusted upstream verdict is there), and the body is streamed chunk by chunk.
// - DMARC (RFC 9989 / RFC 7489) in auth/dmarc on those verdicts, always ours: the record's
//   rua/ruf and the policy are what reports need.
// - Trusted upstream mode (milter.trust-authserv-ids): Authentication-Results (RFC 8601) from
//   a trusted authserv-id supply the SPF and DKIM verdicts instead of verifying again, method by
//   method (a method the trusted fields do not report is verified here); the newest (topmost)
//   field with a method wins.
// - RFC 8601 §5: every Authentication-Results claiming our own authserv-id that arrives with
//   the message is forged (or stale) and is deleted, also for mail that is not evaluated.
// - One Authentication-Results field (RFC 8601 §2.2) is added at the top (milter.add-header).
// - Not evaluated as inbound mail: SMTP AUTH submissions ({auth_authen} set), clients in
//   milter.trusted-networks, and connections without an IP address (local submission).
// - Mail whose recipients all match report.analysis.addresses is evaluated but not recorded:
//   reports are never sent about report messages (design.md, "Safety rules").
// - Enforcement (milter.dmarc-enforce, default off): 550 5.7.1 naming the policy domain
//   (RFC 7489 §7.2 / RFC 9989 §7.2 wording), quarantine through the MTA's hold/quarantine
//   (milter.dmarc-quarantine), 451 4.7.1 when DMARC could not be evaluated for a DNS error and
//   the policy is not p=none (or unknown), unless milter.dmarc-temperror = "accept". When a
//   policy is not applied the recorded disposition says so with a local_policy override
//   (RFC 9990 §3.1.1.9).
// - Failure reports (DMARC ruf/fo=, DKIM r=y, SPF ra=): when FailurePlanner::may_report says
//   one could be due (a cheap test; passing mail stops there), the planner decides with what
//   the session knows of the message (MessageTraits: multipart/report, Auto-Submitted, all
//   recipients report mailboxes, our own report from-addresses as From or MAIL FROM). With
//   requests, the evaluation carries MAIL FROM, the RCPTs, our A-R value and the original: the
//   header fields as received (kept from the header step, CRLF), and with
//   report.failure.include = "message" the body, which is then buffered for every evaluated
//   message up to report.failure.max-original (the cap applies to the whole original).
// - Evaluations whose DMARC record has rua=, or that carry failure reports, go to the
//   EvaluationQueue (never blocks); a message that is answered 4xx is not recorded (it will
//   come again).
//
// - DSNs the MTA generates (report.dsn): a message from the null sender with Content-Type
//   multipart/report; report-type=delivery-status (RFC 3464), from a connection without an
//   address or from loopback (Postfix's non_smtpd_milters hands its bounces over as local
//   mail), is handled before the local-mail skip: its From becomes `from-name <from-address>`
//   (smfi_chgheader) and it is DKIM-signed with the report.dsn.sign keys over the changed
//   From, the DKIM-Signature fields inserted at the top in the order of the ids. A DSN
//   arriving from another host is left alone.
//
// Events before end of message always answer Continue: the wrapper negotiates "no reply" for
// those steps (SMFIP_NR_*), so they cost no round trip. Not done: ARC.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/dkim.hpp"
#include "mailreport/auth/dmarc.hpp"
#include "mailreport/auth/failure.hpp"
#include "mailreport/auth/spf.hpp"
#include "mailreport/auth/verdict.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/milter/writer.hpp"
#include "mailreport/outbound/signer.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::milter {

// What an event asks the MTA to do with the message (libmilter's SMFIS_*).
enum class Decision { Continue, Accept, Reject, TempFail, Discard };
const char* to_string(Decision d) noexcept;

// The message modifications and replies a session may ask for (libmilter's smfi_*).
class Actions {
 public:
  virtual ~Actions() = default;
  // Appends a header field at the end of the header.
  virtual Status add_header(std::string_view name, std::string_view value) = 0;
  // Inserts a header field before the index-th field (0: at the top).
  virtual Status insert_header(int index, std::string_view name, std::string_view value) = 0;
  // Changes the index-th (1-based) field called `name`; an empty value deletes it.
  virtual Status change_header(std::string_view name, int index, std::string_view value) = 0;
  // Puts the message in the MTA's quarantine (Postfix: the hold queue).
  virtual Status quarantine(std::string_view reason) = 0;
  // The SMTP reply that goes with a Reject or TempFail decision.
  virtual Status set_reply(std::string_view code, std::string_view xcode,
                           std::string_view text) = 0;
};

// The MTA's macros ("{auth_authen}", "i", "j", "{daemon_name}"); nullopt when not sent.
class Macros {
 public:
  virtual ~Macros() = default;
  virtual std::optional<std::string> get(std::string_view name) const = 0;
};

class NoMacros final : public Macros {
 public:
  std::optional<std::string> get(std::string_view) const override { return std::nullopt; }
};

// What every session of one configuration shares: the configuration and the verifiers built
// from it. A reload (SIGHUP) builds a new one; sessions keep the one they started with.
struct Environment {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<dns::Resolver> resolver;  // the one the verifiers use (kept for reloads)
  std::shared_ptr<const auth::SpfVerifier> spf;
  std::shared_ptr<const auth::DkimVerifier> dkim;
  std::shared_ptr<const auth::DmarcEvaluator> dmarc;
  // Which failure reports a message calls for (null: none are planned).
  std::shared_ptr<const auth::FailurePlanner> failures;
  // The DKIM keys for report.dsn.sign, read at start before privileges are dropped (a reload
  // keeps them); null when report.dsn.sign is empty.
  std::shared_ptr<const outbound::Signers> signers;
  // UTC epoch seconds; default std::time.
  std::function<std::int64_t()> now;
};

struct SessionOptions {
  std::string id = "-";  // names the connection in logs until a queue id is known
  // The MTA keeps the space after the colon of header values (SMFIP_HDR_LEADSPC negotiated):
  // values come with it, and the values we add must carry it.
  bool header_leading_space = false;
};

class Session {
 public:
  // `actions`, `queue` and `log` must outlive the session.
  Session(std::shared_ptr<const Environment> env, Actions& actions, EvaluationQueue& queue,
          Logger& log, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // `ip` in presentation form; "" when the client has none (local submission).
  Decision connect(std::string_view hostname, std::string_view ip, const Macros& macros);
  Decision helo(std::string_view name);
  // args[0] is the path ("<a@example.com>", "<>"), then ESMTP parameters.
  Decision envfrom(std::span<const std::string> args, const Macros& macros);
  Decision envrcpt(std::span<const std::string> args);
  Decision header(std::string_view name, std::string_view value);
  Decision eoh();
  Decision body(std::span<const char> chunk);
  Decision eom(const Macros& macros);
  void abort();  // the transaction ended without end of message
  void close();  // the connection ends

  // The last message's evaluation (also when not recorded); for tests and logs.
  const std::optional<auth::Evaluation>& last_evaluation() const noexcept { return last_; }
  // Whether the last message was handed to the queue.
  bool last_recorded() const noexcept { return last_recorded_; }

 private:
  struct Message;
  void reset_message();
  Decision enforce(auth::Evaluation& ev);
  void plan_failure_reports(auth::Evaluation& ev, Decision decision);
  void start_dsn();
  void finish_dsn();
  std::string context() const;

  std::shared_ptr<const Environment> env_;
  Actions& actions_;
  EvaluationQueue& queue_;
  Logger& log_;
  SessionOptions options_;

  // The connection.
  std::string client_host_;
  std::string client_ip_;
  std::string helo_;
  std::string skip_reason_;  // why the connection's mail is not evaluated ("" = evaluated)

  std::unique_ptr<Message> msg_;
  std::optional<auth::Evaluation> last_;
  bool last_recorded_ = false;
};

}  // namespace mailreport::milter
