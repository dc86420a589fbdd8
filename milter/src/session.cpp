// The milter session: SPF, DKIM and DMARC for each message of one MTA connection, the
// Authentication-Results it adds and removes, enforcement, and the hand-off to the writer
// (see session.hpp for the behaviour and the RFCs).
#include "mailreport/milter/session.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <ctime>
#include <utility>

#include "dsn.hpp"
#include "mailreport/auth/authres.hpp"
#include "mailreport/util/metrics.hpp"

namespace mailreport::milter {

namespace {

constexpr std::string_view kAuthResults = "Authentication-Results";

// This process's counters (docs/metrics.md), looked up once: a session only increments
// atomics (relaxed), it never takes the registry's lock.
struct Counters {
  std::atomic<std::uint64_t>* sessions = nullptr;
  std::array<std::atomic<std::uint64_t>*, 5> messages{};  // by auth::DmarcResult
};

const Counters& counters() {
  static const Counters c = [] {
    Metrics& m = Metrics::process();
    Counters out;
    out.sessions = &m.counter("mailreport_milter_sessions_total");
    for (auto r : {auth::DmarcResult::None, auth::DmarcResult::Pass, auth::DmarcResult::Fail,
                   auth::DmarcResult::TempError, auth::DmarcResult::PermError}) {
      out.messages[static_cast<std::size_t>(r)] =
          &m.counter("mailreport_milter_messages_total", "result", auth::to_string(r));
    }
    return out;
  }();
  return c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// "<user@example.com>" / "<>" / "<@relay:user@example.com>" / "user@example.com" → the
// address without brackets and source route (RFC 5321 §4.1.2, §C).
std::string path_address(std::string_view path) {
  path = trim(path);
  if (path.size() >= 2 && path.front() == '<' && path.back() == '>') {
    path = path.substr(1, path.size() - 2);
  }
  if (!path.empty() && path.front() == '@') {
    const auto colon = path.find(':');
    path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
  }
  return std::string(path);
}

// The domain of an address, lower case, without a trailing dot; "" when there is none.
std::string domain_of(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string d = lower(address.substr(at + 1));
  if (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

// RFC 4291 §2.5.5.2: an IPv4-mapped IPv6 address is reported as the IPv4 address it carries
// (aggregate reports and SPF's ip4: mechanisms want the IPv4 form).
std::string normalize_ip(std::string_view ip) {
  constexpr std::string_view kMapped = "::ffff:";
  if (ip.size() > kMapped.size() && iequals(ip.substr(0, kMapped.size()), kMapped) &&
      ip.find('.') != std::string_view::npos) {
    return std::string(ip.substr(kMapped.size()));
  }
  return std::string(ip);
}

bool contains_id(const std::vector<std::string>& ids, std::string_view id) {
  return std::any_of(ids.begin(), ids.end(), [&](const std::string& x) { return iequals(x, id); });
}

}  // namespace

const char* to_string(Decision d) noexcept {
  switch (d) {
    case Decision::Continue: return "continue";
    case Decision::Accept: return "accept";
    case Decision::Reject: return "reject";
    case Decision::TempFail: return "tempfail";
    case Decision::Discard: return "discard";
  }
  return "?";
}

struct Session::Message {
  std::string mail_from;  // without <>; "" for the null path
  bool have_mail = false;
  std::string auth_user;    // {auth_authen}
  std::string envelope_to;  // first recipient's domain
  bool all_report_mailboxes = true;
  std::size_t recipients = 0;
  std::string queue_id;

  // Header fields as received: fed to DKIM at end of headers, kept for failure reports.
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> rcpt_to;  // RCPT TO addresses (Original-Rcpt-To)
  std::string content_type;          // the first Content-Type field's value
  std::string auto_submitted;        // the first Auto-Submitted field's value
  // report.failure.include = "message": the body, up to report.failure.max-original bytes.
  std::string body;
  bool body_truncated = false;
  int auth_results_fields = 0;  // Authentication-Results fields seen so far
  std::vector<int> forged;      // indexes of A-R fields claiming our authserv-id
  std::vector<std::string> from_headers;
  std::string message_id;

  // Verdicts from trusted Authentication-Results (newest field first wins, per method).
  std::optional<std::vector<auth::SpfVerdict>> trusted_spf;
  std::optional<std::vector<auth::DkimVerdict>> trusted_dkim;

  std::unique_ptr<auth::DkimVerification> dkim;
  bool eoh_seen = false;

  // A DSN the MTA generated (report.dsn): the From value it gets ("" = unchanged) and the
  // signing sessions fed with the message as it will leave.
  bool dsn = false;
  std::string dsn_from;
  std::vector<std::unique_ptr<outbound::SigningSession>> dsn_signing;
};

Session::Session(std::shared_ptr<const Environment> env, Actions& actions, EvaluationQueue& queue,
                 Logger& log, SessionOptions options)
    : env_(std::move(env)),
      actions_(actions),
      queue_(queue),
      log_(log),
      options_(std::move(options)),
      msg_(std::make_unique<Message>()) {}

Session::~Session() = default;

std::string Session::context() const {
  return msg_->queue_id.empty() ? options_.id : options_.id + " " + msg_->queue_id;
}

void Session::reset_message() {
  msg_ = std::make_unique<Message>();
}

Decision Session::connect(std::string_view hostname, std::string_view ip, const Macros& macros) {
  counters().sessions->fetch_add(1, std::memory_order_relaxed);
  client_host_ = std::string(hostname);
  client_ip_ = normalize_ip(ip);
  const auto& m = env_->config->milter;
  if (client_ip_.empty()) {
    skip_reason_ = "local connection (no client address)";
  } else if (m.trusted_networks.contains(client_ip_)) {
    skip_reason_ = "client " + client_ip_ + " is in milter.trusted-networks";
  } else {
    skip_reason_.clear();
  }
  // j: the MTA's host name; {daemon_name}: its listener (Postfix: the master.cf service).
  const std::string mta =
      macros.get("j").value_or("?") + "/" + macros.get("{daemon_name}").value_or("?");
  log_.debug(options_.id, "connect from " + client_host_ + " [" + client_ip_ + "] to " + mta +
                              (skip_reason_.empty() ? "" : ": not evaluated, " + skip_reason_));
  return Decision::Continue;
}

Decision Session::helo(std::string_view name) {
  helo_ = std::string(trim(name));
  return Decision::Continue;
}

Decision Session::envfrom(std::span<const std::string> args, const Macros& macros) {
  reset_message();
  msg_->have_mail = true;
  msg_->mail_from = args.empty() ? std::string() : path_address(args.front());
  msg_->auth_user = macros.get("{auth_authen}").value_or("");
  msg_->queue_id = macros.get("i").value_or("");
  return Decision::Continue;
}

Decision Session::envrcpt(std::span<const std::string> args) {
  if (args.empty()) return Decision::Continue;
  const std::string rcpt = path_address(args.front());
  if (msg_->recipients++ == 0) msg_->envelope_to = domain_of(rcpt);
  if (!env_->config->report.analysis_addresses.matches(rcpt)) msg_->all_report_mailboxes = false;
  msg_->rcpt_to.push_back(rcpt);
  return Decision::Continue;
}

Decision Session::header(std::string_view name, std::string_view value) {
  Message& m = *msg_;
  const std::string_view v = trim(value);
  const auto& mc = env_->config->milter;
  if (iequals(name, kAuthResults)) {
    // smfi_chgheader(3) counts fields of one name from 1.
    const int index = ++m.auth_results_fields;
    const std::string id = auth::authserv_id_of(v);
    if (!id.empty() && iequals(id, mc.authserv_id)) {
      // RFC 8601 §5: an instance claiming our authserv-id did not come from us.
      m.forged.push_back(index);
    } else if (!id.empty() && contains_id(mc.trust_authserv_ids, id)) {
      if (auto parsed = auth::parse_authentication_results(v); parsed.ok()) {
        auth::TrustedVerdicts t = auth::verdicts_from(*parsed);
        // Fields come top-down, newest first: the first field with a method wins.
        if (!m.trusted_spf && !t.spf.empty()) m.trusted_spf = std::move(t.spf);
        if (!m.trusted_dkim && !t.dkim.empty()) {
          // "dkim=none" says the upstream found no signature: no verdict to keep, but DKIM
          // was checked.
          std::erase_if(t.dkim, [](const auth::DkimVerdict& d) {
            return d.result == auth::DkimResult::None && d.domain.empty();
          });
          m.trusted_dkim = std::move(t.dkim);
        }
      } else {
        log_.info(context(), "unparsable Authentication-Results from trusted " + id + ": " +
                                 parsed.error().message);
      }
    }
  } else if (iequals(name, "From")) {
    m.from_headers.emplace_back(v);
  } else if (iequals(name, "Message-ID") && m.message_id.empty()) {
    m.message_id = std::string(v);
  } else if (iequals(name, "Content-Type") && m.content_type.empty()) {
    m.content_type = std::string(v);
  } else if (iequals(name, "Auto-Submitted") && m.auto_submitted.empty()) {
    m.auto_submitted = std::string(v);
  }
  if (!m.eoh_seen) m.headers.emplace_back(std::string(name), std::string(value));
  return Decision::Continue;
}

Decision Session::eoh() {
  Message& m = *msg_;
  m.eoh_seen = true;
  // RFC 3464 §2: DSNs come from the null sender.
  if (m.have_mail && m.mail_from.empty() && !m.content_type.empty()) start_dsn();
  if (skip_reason_.empty() && m.auth_user.empty() && !m.trusted_dkim && env_->dkim) {
    m.dkim = env_->dkim->start(context(), options_.header_leading_space);
    for (const auto& [name, value] : m.headers) {
      if (auto st = m.dkim->header(name, value); !st) {
        log_.debug(context(), "DKIM: header " + name + " not used: " + st.error().message);
      }
    }
    if (auto st = m.dkim->end_of_headers(); !st) {
      log_.warning(context(), "DKIM: end of headers: " + st.error().message);
    }
  }
  return Decision::Continue;
}

Decision Session::body(std::span<const char> chunk) {
  Message& m = *msg_;
  if (!m.eoh_seen) eoh();  // the wrapper negotiates SMFIP_NOEOH: the first chunk ends the headers
  if (m.dkim) {
    if (auto st = m.dkim->body(chunk); !st) {
      log_.debug(context(), "DKIM: body: " + st.error().message);
    }
  }
  for (auto& signing : m.dsn_signing) {
    if (auto st = signing->body(chunk); !st) {
      log_.warning(context(), "DSN: signing: " + st.error().message + "; left unsigned");
      m.dsn_signing.clear();
      break;
    }
  }
  const auto& failure = env_->config->report.failure;
  if (failure.include == config::FailureOriginal::Message && env_->failures &&
      skip_reason_.empty() && m.auth_user.empty() && !m.body_truncated) {
    // Kept only as far as a failure report could carry it (report.failure.max-original).
    const std::size_t room = static_cast<std::size_t>(failure.max_original) - m.body.size();
    m.body.append(chunk.data(), std::min(room, chunk.size()));
    m.body_truncated = chunk.size() > room;
  }
  return Decision::Continue;
}

Decision Session::eom(const Macros& macros) {
  Message& m = *msg_;
  if (auto qid = macros.get("i"); qid && !qid->empty()) m.queue_id = *qid;
  if (!m.eoh_seen) eoh();  // a message without header/body steps (never with Postfix)
  const auto& cfg = *env_->config;
  const auto& mc = cfg.milter;
  last_.reset();
  last_recorded_ = false;

  // Highest index first, so that the indexes of the fields still to delete cannot shift.
  for (auto it = m.forged.rbegin(); it != m.forged.rend(); ++it) {
    if (auto st = actions_.change_header(kAuthResults, *it, ""); !st) {
      log_.warning(context(),
                   "could not remove a forged Authentication-Results: " + st.error().message);
    }
  }
  if (!m.forged.empty()) {
    log_.info(context(), "removed " + std::to_string(m.forged.size()) +
                             " Authentication-Results claiming our authserv-id " + mc.authserv_id);
  }

  if (m.dsn) finish_dsn();  // local mail, which the skip below would pass by

  std::string skip = skip_reason_;
  if (skip.empty() && !m.auth_user.empty()) skip = "authenticated as " + m.auth_user;
  if (!skip.empty()) {
    log_.debug(context(), "not evaluated: " + skip);
    reset_message();
    return Decision::Continue;
  }

  auth::Evaluation ev;
  ev.time = env_->now ? env_->now() : static_cast<std::int64_t>(std::time(nullptr));
  ev.source_ip = client_ip_;
  ev.helo = helo_;
  ev.envelope_from = domain_of(m.mail_from);
  ev.envelope_to = m.envelope_to;
  ev.message_id = m.message_id;

  if (m.trusted_spf) {
    ev.spf = std::move(*m.trusted_spf);
  } else if (env_->spf) {
    ev.spf = env_->spf->check(client_ip_, helo_, m.mail_from);
  }
  if (m.trusted_dkim) {
    ev.dkim = std::move(*m.trusted_dkim);
  } else if (m.dkim) {
    ev.dkim = m.dkim->finish();
  }
  ev.trusted_upstream = m.trusted_spf.has_value() || m.trusted_dkim.has_value();
  if (env_->dmarc) ev.dmarc = env_->dmarc->evaluate(m.from_headers, ev.spf, ev.dkim);
  ev.header_from = ev.dmarc.header_from;
  if (const auto r = static_cast<std::size_t>(ev.dmarc.result); r < counters().messages.size()) {
    counters().messages[r]->fetch_add(1, std::memory_order_relaxed);
  }

  const Decision decision = enforce(ev);

  if (mc.add_header && (decision == Decision::Continue || decision == Decision::Accept)) {
    std::string value = auth::format_authentication_results(mc.authserv_id, ev);
    if (options_.header_leading_space) value.insert(0, " ");
    // RFC 8601 §4: prepended, above the trace fields the message already has.
    if (auto st = actions_.insert_header(0, kAuthResults, value); !st) {
      log_.warning(context(), "could not add Authentication-Results: " + st.error().message);
    }
  }

  plan_failure_reports(ev, decision);

  // A message answered 4xx comes back; recording it now would count it twice.
  const bool has_rua = ev.dmarc.record && !ev.dmarc.record->rua.empty();
  std::string recorded = "not recorded (no rua=)";
  if (decision == Decision::TempFail) {
    recorded = "not recorded (tempfail)";
  } else if (m.recipients > 0 && m.all_report_mailboxes) {
    recorded = "not recorded (addressed to report mailboxes)";
  } else if (has_rua || !ev.failure_reports.empty()) {
    const std::size_t reports = ev.failure_reports.size();
    last_recorded_ = queue_.push(ev);
    recorded = last_recorded_ ? "recorded" : "not recorded (queue full)";
    if (reports > 0) recorded += " with " + std::to_string(reports) + " failure report(s) due";
  }

  std::string dkim_text;
  for (const auto& d : ev.dkim) {
    dkim_text += (dkim_text.empty() ? "" : ",") + std::string(auth::to_string(d.result)) +
                 "(d=" + d.domain + ")";
  }
  const auth::SpfResult spf_result = ev.spf.empty() ? auth::SpfResult::None : ev.spf.front().result;
  log_.info(context(),
            "ip=" + ev.source_ip + " from=" + ev.header_from + " mfrom=" + ev.envelope_from +
                " spf=" + auth::to_string(spf_result) +
                " dkim=" + (dkim_text.empty() ? "none" : dkim_text) +
                " dmarc=" + auth::to_string(ev.dmarc.result) +
                (ev.dmarc.policy_domain.empty() ? std::string()
                                                : " policy=" + ev.dmarc.policy_domain + ":" +
                                                      auth::to_string(ev.dmarc.applied_policy)) +
                " disposition=" + auth::to_string(ev.dmarc.disposition) +
                (ev.trusted_upstream ? " (trusted upstream)" : "") + " " + to_string(decision) +
                ", " + recorded);

  last_ = std::move(ev);
  reset_message();
  return decision;
}

void Session::start_dsn() {
  Message& m = *msg_;
  const auto& d = env_->config->report.dsn;
  if (d.from_name.empty() && d.from_address.empty() && d.sign.empty()) return;
  // Only the MTA's own DSNs: one from another host is someone else's to sign.
  static const config::NetworkList kLoopback = config::NetworkList::loopback();
  if (!client_ip_.empty() && !kLoopback.contains(client_ip_)) return;
  if (!dsn::is_delivery_status(m.content_type)) return;
  m.dsn = true;
  const std::pair<std::string, std::string>* from = nullptr;
  for (const auto& h : m.headers) {
    if (iequals(h.first, "From")) {
      from = &h;
      break;
    }
  }
  m.dsn_from = dsn::from_value(d, from != nullptr ? std::string_view(from->second) : "");
  if (d.sign.empty()) return;
  if (!env_->signers) {
    log_.warning(context(), "DSN: report.dsn.sign keys were not loaded (set at start?); unsigned");
    return;
  }
  auto signers = env_->signers->get(d.sign);
  if (!signers) {
    log_.warning(context(), "DSN: report.dsn.sign: " + signers.error().message + "; unsigned");
    return;
  }
  for (const auto& signer : *signers) m.dsn_signing.push_back(signer->start());
  // The header as it will leave: the From value replaced, folds with CRLF.
  std::string value;
  for (const auto& h : m.headers) {
    const std::string_view v = &h == from && !m.dsn_from.empty() ? m.dsn_from : h.second;
    value.clear();
    char last = '\0';
    for (char c : v) {
      if (c == '\n' && last != '\r') value += '\r';
      value += c;
      last = c;
    }
    for (auto& signing : m.dsn_signing) {
      if (auto st = signing->header(h.first, value); !st) {
        log_.warning(context(), "DSN: signing: " + st.error().message + "; left unsigned");
        m.dsn_signing.clear();
        return;
      }
    }
  }
  for (auto& signing : m.dsn_signing) {
    if (auto st = signing->end_of_headers(); !st) {
      log_.warning(context(), "DSN: signing: " + st.error().message + "; left unsigned");
      m.dsn_signing.clear();
      return;
    }
  }
}

void Session::finish_dsn() {
  Message& m = *msg_;
  const std::string space = options_.header_leading_space ? " " : "";
  if (!m.dsn_from.empty()) {
    if (auto st = actions_.change_header("From", 1, space + m.dsn_from); !st) {
      log_.warning(context(), "DSN: could not change From: " + st.error().message);
    }
  }
  std::vector<std::string> signatures;
  for (auto& signing : m.dsn_signing) {
    auto value = signing->finish();
    if (!value) {
      log_.warning(context(), "DSN: signing: " + value.error().message + "; left unsigned");
      signatures.clear();
      break;
    }
    // Folded with LF for the MTA (as OpenDKIM hands its signatures to Postfix and Sendmail).
    std::string lf;
    for (char c : *value) {
      if (c != '\r') lf += c;
    }
    signatures.push_back(std::move(lf));
  }
  // Inserted at the top one after the other: the last inserted ends up first, so the first
  // id's signature goes in last.
  for (auto it = signatures.rbegin(); it != signatures.rend(); ++it) {
    if (auto st = actions_.insert_header(0, "DKIM-Signature", space + *it); !st) {
      log_.warning(context(), "DSN: could not add DKIM-Signature: " + st.error().message);
    }
  }
  log_.info(context(), "DSN from the MTA" +
                           (m.dsn_from.empty() ? std::string() : ": From set to " + m.dsn_from) +
                           (!signatures.empty() ? ", " + std::to_string(signatures.size()) +
                                                      " DKIM signature(s) added"
                            : env_->config->report.dsn.sign.empty() ? std::string()
                                                                    : ", unsigned"));
}

void Session::plan_failure_reports(auth::Evaluation& ev, Decision decision) {
  // Passing mail stops at the cheap test; a 4xx'd message is not recorded (it comes again).
  if (!env_->failures || decision == Decision::TempFail || !auth::FailurePlanner::may_report(ev)) {
    return;
  }
  Message& m = *msg_;
  const auto& cfg = *env_->config;
  auth::MessageTraits traits;
  // RFC 6591 §6.3, design.md "Safety rules": never about a report. RFC 3834 §5: any
  // Auto-Submitted value other than "no" marks automatic mail.
  std::string_view auto_submitted = trim(m.auto_submitted);
  auto_submitted = trim(auto_submitted.substr(0, auto_submitted.find_first_of(";(")));
  const std::string content_type = lower(trim(m.content_type));
  traits.is_report = content_type.rfind("multipart/report", 0) == 0 ||
                     (!auto_submitted.empty() && !iequals(auto_submitted, "no")) ||
                     (m.recipients > 0 && m.all_report_mailboxes);
  // Never about our own report traffic: From or MAIL FROM is one of our report addresses.
  for (const std::string* ours : {&cfg.report.dmarc.from_address, &cfg.report.dkim.from_address,
                                  &cfg.report.spf.from_address, &cfg.report.dsn.from_address}) {
    if (ours->empty()) continue;
    if (iequals(m.mail_from, *ours)) traits.own_traffic = true;
    for (const auto& from : m.from_headers) {
      if (lower(from).find(lower(*ours)) != std::string::npos) traits.own_traffic = true;
    }
  }
  ev.failure_reports = env_->failures->plan(ev, traits);
  if (ev.failure_reports.empty()) return;

  ev.mail_from = m.mail_from;
  ev.rcpt_to = m.rcpt_to;
  ev.authentication_results = auth::format_authentication_results(cfg.milter.authserv_id, ev);
  // The header block as received: "name: value" (the MTA strips the space after the colon
  // unless SMFIP_HDR_LEADSPC), folded lines with CRLF (RFC 5322 §2.2).
  std::string& out = ev.original;
  for (const auto& [name, value] : m.headers) {
    out += name;
    out += options_.header_leading_space ? ":" : ": ";
    char last = '\0';
    for (char c : value) {
      if (c == '\n' && last != '\r') out += '\r';
      out += c;
      last = c;
    }
    out += "\r\n";
  }
  const auto& failure = cfg.report.failure;
  if (failure.include == config::FailureOriginal::Message) {
    out += "\r\n";
    out += m.body;
    ev.original_truncated = m.body_truncated;
  }
  if (out.size() > failure.max_original) {
    out.resize(static_cast<std::size_t>(failure.max_original));
    ev.original_truncated = true;
  }
}

Decision Session::enforce(auth::Evaluation& ev) {
  const auto& mc = env_->config->milter;
  auth::DmarcVerdict& v = ev.dmarc;
  const std::string& domain = v.policy_domain.empty() ? v.header_from : v.policy_domain;

  if (v.result == auth::DmarcResult::TempError) {
    // RFC 9989 §5.3.6: neither pass nor fail. A policy that would do nothing (p=none) is no
    // reason to delay the mail; an unknown one or a stricter one is (RFC 7489 §7.2: "4xy").
    const bool matters = !v.record || v.applied_policy != auth::Policy::None;
    if (mc.dmarc_enforce && matters && mc.dmarc_temperror == config::TempErrorAction::TempFail) {
      (void)actions_.set_reply("451", "4.7.1",
                               "Temporary DNS failure evaluating the DMARC policy for " +
                                   (domain.empty() ? std::string("the sender") : domain) +
                                   "; try again later");
      return Decision::TempFail;
    }
    return Decision::Continue;
  }
  if (v.result != auth::DmarcResult::Fail || v.disposition == auth::Disposition::None) {
    return Decision::Continue;
  }
  if (!mc.dmarc_enforce) {
    v.overrides.emplace_back(auth::OverrideReason::LocalPolicy,
                             "not enforced (milter.dmarc-enforce = false)");
    v.disposition = auth::Disposition::None;
    return Decision::Continue;
  }
  if (v.disposition == auth::Disposition::Reject) {
    // RFC 7489 §7.2 / RFC 9989 §7.2: a 5xy reply that says DMARC.
    (void)actions_.set_reply("550", "5.7.1", "Email rejected per DMARC policy for " + domain);
    return Decision::Reject;
  }
  // Quarantine.
  if (mc.dmarc_quarantine == config::QuarantineAction::Hold) {
    if (auto st = actions_.quarantine("DMARC policy quarantine for " + domain); !st) {
      log_.warning(context(), "could not quarantine: " + st.error().message);
      v.overrides.emplace_back(auth::OverrideReason::LocalPolicy, "the MTA refused to quarantine");
      v.disposition = auth::Disposition::None;
    }
  } else {
    v.overrides.emplace_back(auth::OverrideReason::LocalPolicy,
                             "quarantine not applied (milter.dmarc-quarantine = accept)");
    v.disposition = auth::Disposition::None;
  }
  return Decision::Continue;
}

void Session::abort() {
  reset_message();
}

void Session::close() {
  reset_message();
}

}  // namespace mailreport::milter
