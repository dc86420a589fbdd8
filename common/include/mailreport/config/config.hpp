// Configuration: one TOML file (toml++), parsed once into an immutable Config. Keys follow
// Stalwart where Stalwart has them (report.domain, report.submitter, report.analysis.*);
// every key, its default and its meaning are documented in conf/mailreport.toml.
//
// Values may be Stalwart-style expressions: 'single-quoted literal', `+` concatenation and
// config_get('other.key'), e.g.  from-address = "'noreply-dmarc@' + config_get('report.domain')".
// Plain TOML values are taken as they are.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::config {

// Recipient patterns accepted as report mailboxes (report.analysis.addresses):
// "*suffix" (e.g. "*@reports.example.com"), "prefix*" (e.g. "dmarc@*"), or an exact address.
// Matching is case-insensitive, and a "+tag" in the local part is ignored
// ("dmarc+google@example.com" matches "dmarc@*").
class AddressPatterns {
 public:
  AddressPatterns() = default;
  explicit AddressPatterns(std::vector<std::string> patterns);
  bool matches(std::string_view address) const;
  const std::vector<std::string>& patterns() const noexcept { return patterns_; }

 private:
  std::vector<std::string> patterns_;  // lower-cased
};

// IP networks in CIDR notation ("192.0.2.0/24", "2001:db8::/32"; a bare address is a /32 or
// /128), for milter.trusted-networks. An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is matched
// as the IPv4 address it carries.
class NetworkList {
 public:
  NetworkList() = default;
  // Every text must be valid; the error names the first bad one.
  static Result<NetworkList> parse(const std::vector<std::string>& cidrs);
  // 127.0.0.0/8 and ::1/128 (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3): the default trusted networks.
  static NetworkList loopback();
  // `ip` in presentation form ("192.0.2.1", "2001:db8::1"); false when it does not parse.
  bool contains(std::string_view ip) const;
  bool empty() const noexcept { return nets_.empty(); }
  const std::vector<std::string>& texts() const noexcept { return texts_; }

 private:
  struct Net {
    int family = 0;                        // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};  // network address, host bits zero
    unsigned prefix = 0;                   // prefix length in bits
  };
  std::vector<Net> nets_;
  std::vector<std::string> texts_;  // as written
};

// send = "N/period" (Stalwart's report.*.send): at most `count` reports per destination
// address per fixed window of `period`, windows aligned to the epoch (UTC).
struct RateLimit {
  std::uint32_t count = 1;
  std::chrono::seconds period{86400};
};
// Parses "1/1d", "10/12h" (count > 0; period as parse_duration).
Result<RateLimit> parse_rate_limit(std::string_view text);

// report.dmarc | report.dkim | report.spf: one kind of failure report (Stalwart's keys and
// defaults).
struct FailureReportSettings {
  std::string from_name = "Report Subsystem";  // from-name
  std::string from_address;       // from-address: 'noreply-dmarc@' (dkim, spf) + report.domain
  std::string subject;            // subject: 'DMARC Authentication Failure Report' (DKIM, SPF)
  std::vector<std::string> sign;  // sign: signature ids (signature.<id>); [] = unsigned
  std::optional<RateLimit> send = RateLimit{};  // send: "1/1d"; false = never send (nullopt)
};

// report.dsn: applied by the milter to DSNs the MTA generates (null sender,
// multipart/report; report-type=delivery-status). Empty = leave as the MTA wrote it.
struct DsnSettings {
  std::string from_name;          // report.dsn.from-name
  std::string from_address;       // report.dsn.from-address
  std::vector<std::string> sign;  // report.dsn.sign: signature ids
};

// What of the reported message a failure report carries (RFC 6591 §3.1 / RFC 9991).
enum class FailureOriginal { Headers, Message };  // text/rfc822-headers | message/rfc822

// report.failure: shared by the three failure report kinds.
struct FailureFormatConfig {
  FailureOriginal include = FailureOriginal::Headers;  // report.failure.include
  std::uint64_t max_original = 64ull << 10;  // report.failure.max-original ("64KB"), cut beyond
  // RFC 6590 redaction: local-parts of addresses in the report (Original-Mail-From,
  // Original-Rcpt-To, the reported header fields) replaced by a keyed hash
  // (HMAC-SHA256 with redact-key, hex, first 16 characters).
  bool redact = false;     // report.failure.redact
  std::string redact_key;  // report.failure.redact-key (required when redact = true)
};

// signature.<id>: a DKIM signing key (Stalwart's keys).
struct SignatureConfig {
  std::string id;
  std::filesystem::path private_key;     // private-key: PEM file (PKCS#8 or traditional)
  std::string domain;                    // domain: d=
  std::string selector;                  // selector: s=
  std::string algorithm = "rsa-sha256";  // algorithm: rsa-sha256 | ed25519-sha256
  // headers: the fields signed (h=); default From, To, Cc, Subject, Date, Message-ID,
  // In-Reply-To, References, MIME-Version, Content-Type, Content-Transfer-Encoding,
  // Auto-Submitted.
  std::vector<std::string> headers;
  std::string canonicalization = "relaxed/relaxed";  // canonicalization: header/body
};

// How mailreport serve hands reports to the MTA (report.submit).
enum class SubmitMethod { Sendmail, Smtp };
struct SubmitConfig {
  SubmitMethod method = SubmitMethod::Sendmail;                // report.submit.method
  std::filesystem::path sendmail_path = "/usr/sbin/sendmail";  // report.submit.sendmail-path
  std::string smtp_url = "smtp://127.0.0.1:25";                // report.submit.smtp-url
  std::chrono::seconds timeout{60};                            // report.submit.timeout
  std::chrono::seconds max_age{3 * 24 * 3600};  // report.submit.max-age: temporary failures
                                                // are retried (backoff 1m doubling to 1h)
                                                // until this age, then the report fails
};

// How often aggregate reports are built (report.dmarc.aggregate.send,
// report.tls.aggregate.send): intervals aligned to UTC (an hour, a day from 00:00, a week from
// Monday 00:00), or never.
enum class AggregateFrequency { Never, Hourly, Daily, Weekly };
const char* to_string(AggregateFrequency v) noexcept;  // "never", "hourly", "daily", "weekly"
// The interval length (0 for Never).
std::chrono::seconds interval_length(AggregateFrequency v) noexcept;

// The XML schema of the DMARC aggregate reports we send (report.dmarc.aggregate.format).
enum class DmarcAggregateFormat { Rfc9990, Rfc7489 };
const char* to_string(DmarcAggregateFormat v) noexcept;  // "rfc9990", "rfc7489"

// report.dmarc.aggregate | report.tls.aggregate: the aggregate reports we send (Stalwart's keys
// and defaults, plus format and spread).
struct AggregateReportSettings {
  std::string from_name;     // from-name: "DMARC Report" | "TLS Report"
  std::string from_address;  // from-address: 'noreply-dmarc@' | 'noreply-tls@' + report.domain
  std::string org_name;      // org-name: report.domain
  // contact-info: "" (DMARC: optional). TLS-RPT requires one (RFC 8460 §4.4), so for TLS an
  // empty value means from-address.
  std::string contact_info;
  AggregateFrequency send = AggregateFrequency::Daily;  // send: TLS allows daily | never only
  std::vector<std::string> sign;      // sign: signature ids, default as report.dmarc.sign
  std::uint64_t max_size = 26214400;  // max-size ("25MB"): larger reports are not mailed
  // spread ("1h"): each report's first send attempt is at a random time in
  // [interval end, interval end + spread), so that receivers are not hit all at once.
  std::chrono::seconds spread{3600};
  DmarcAggregateFormat format = DmarcAggregateFormat::Rfc9990;  // format (DMARC only)
};

struct ReportConfig {
  std::string domain;                  // report.domain: default the domain part of the hostname
  std::string submitter;               // report.submitter: default the hostname
  AddressPatterns analysis_addresses;  // report.analysis.addresses
  std::chrono::seconds analysis_retention{30 * 24 * 3600};  // report.analysis.store ("30d")
  FailureReportSettings dmarc;  // report.dmarc.*  (failure reports; aggregate keys: issue 5)
  FailureReportSettings dkim;   // report.dkim.*
  FailureReportSettings spf;    // report.spf.*
  DsnSettings dsn;              // report.dsn.*
  FailureFormatConfig failure;  // report.failure.*
  SubmitConfig submit;          // report.submit.*
  AggregateReportSettings dmarc_aggregate;  // report.dmarc.aggregate.*
  AggregateReportSettings tls_aggregate;    // report.tls.aggregate.*
  // report.suppress-after (5): a destination of our reports whose bounces (DSNs for reports we
  // sent, received by mailreport-lmtp) reach this many is suppressed: nothing more is sent to
  // it until `mailreport suppress remove`. 0 = never suppress automatically.
  unsigned suppress_after = 5;
};

// [tlsrpt]: the collector in mailreport serve for the MTA's TLS results (libtlsrpt datagrams;
// Postfix >= 3.10 smtp_tlsrpt_enable / smtp_tlsrpt_socket_name).
struct TlsrptConfig {
  std::filesystem::path listen = "/run/mailreport/tlsrpt.sock";  // tlsrpt.listen; "" = off
  mode_t socket_mode = 0660;  // tlsrpt.socket-mode: the MTA's smtp processes write to it
  std::string socket_group;   // tlsrpt.socket-group ("" = keep)
  std::chrono::seconds flush_interval{5};  // tlsrpt.flush-interval: longest wait before a commit
  std::size_t batch_size = 1000;           // tlsrpt.batch-size: datagrams per commit at most
};

// [store]: where reports, evaluations and the outbox live.
struct StoreConfig {
  std::string type = "sqlite";  // store.type: "sqlite" | "postgresql"
  std::filesystem::path path = "/var/lib/mailreport/mailreport.db";  // store.path (SQLite)
  // PostgreSQL (type = "postgresql"; an error with type = "sqlite"): the libpq URL or
  // keyword/value string, from store.url or read from store.url-file when the configuration
  // is loaded. Print it only through mask_url_password.
  std::string url;
  std::filesystem::path url_file;  // store.url-file ("" = none)
  std::size_t pool_size = 8;       // store.pool-size (1..256): connections per process
  std::chrono::milliseconds acquire_timeout{10000};  // store.acquire-timeout ("10s")
};

// `url` with its password replaced by "***" (postgresql://user:***@host/db, password=***,
// ?password=***), for every message that shows a store URL.
std::string mask_url_password(std::string_view url);

// The bearer token held by dashboard.token-file, read and checked as the configuration checks
// it: a regular file closed to other users (its group may read it: root:mailreport 0640), one
// line of RFC 6750 §2.1 token characters. Invalid with a message naming the file otherwise.
Result<std::string> read_dashboard_token_file(const std::filesystem::path& path);

struct LmtpConfig {
  std::string hostname;  // lmtp.hostname: greeting name, default report.submitter
  std::filesystem::path unix_socket = "/run/mailreport/lmtp.sock";  // lmtp.unix-socket; "" = off
  mode_t unix_socket_mode = 0660;   // lmtp.unix-socket-mode ("0660")
  std::string unix_socket_owner;    // lmtp.unix-socket-owner (user name; "" = keep)
  std::string unix_socket_group;    // lmtp.unix-socket-group
  std::string tcp;                  // lmtp.tcp: "127.0.0.1:2424" / "[::1]:2424"; "" = off
  bool allow_non_loopback = false;  // lmtp.allow-non-loopback: let lmtp.tcp be a non-loopback
                                    // address (LMTP has no authentication)
  unsigned max_connections = 32;    // lmtp.max-connections
  std::chrono::seconds idle_timeout{300};  // lmtp.idle-timeout: between commands
  std::chrono::seconds data_timeout{600};  // lmtp.data-timeout: whole DATA phase
  std::filesystem::path spool_dir;  // lmtp.spool-dir: large messages spill here (default: the
                                    // store's directory)
  std::string user;  // lmtp.user: drop privileges to this user after binding ("" = stay)
};

struct LimitsConfig {
  std::uint64_t message_size = 50ull << 20;        // limits.message-size ("50MB")
  std::uint64_t decompressed_size = 256ull << 20;  // limits.decompressed-size ("256MB")
  double compression_ratio = 200.0;                // limits.compression-ratio
  std::size_t line_length = 65536;                 // limits.line-length (bytes, DATA lines)
  std::size_t command_line_length = 4096;          // limits.command-line-length
};

// [dns]: the one resolver (libunbound) shared by SPF, DKIM and DMARC lookups.
struct DnsConfig {
  // dns.nameservers: upstream recursive resolvers ("192.0.2.53", "2001:db8::53",
  // "127.0.0.1@5353"); empty: the ones in /etc/resolv.conf.
  std::vector<std::string> nameservers;
  // dns.local-data: records answered locally, in unbound's local-data syntax
  // ("_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=none\"").
  std::vector<std::string> local_data;
  std::vector<std::string> local_nxdomain;  // dns.local-nxdomain: names answered NXDOMAIN
  bool local_only = false;          // dns.local-only: never ask upstream (tests, closed networks)
  std::chrono::seconds timeout{5};  // dns.timeout ("5s"), per query with retries
  std::uint64_t cache_size = 8ull << 20;  // dns.cache-size ("8MB")
};

// What DNS trouble (RFC 7489 §6.6.3 / RFC 9989 §5.3.6: neither pass nor fail) does to a
// message when DMARC is enforced.
enum class TempErrorAction { TempFail, Accept };
// What a DMARC quarantine disposition does when enforced: hold the message in the MTA's
// quarantine (smfi_quarantine: Postfix's hold queue) or deliver it.
enum class QuarantineAction { Hold, Accept };
// DMARC policy discovery: RFC 9989 §4.10 DNS tree walk, or RFC 7489 §3.2 public suffix list.
enum class DmarcDiscovery { TreeWalk, Psl };

// [milter]: mailreport-milter.
struct MilterConfig {
  // milter.socket, in libmilter's syntax: "unix:/path" (or "local:/path"), "inet:PORT@HOST",
  // "inet6:PORT@[ADDR]".
  std::string socket = "unix:/run/mailreport/milter.sock";
  std::filesystem::path socket_path = "/run/mailreport/milter.sock";  // of a unix socket, else ""
  mode_t socket_mode = 0660;           // milter.socket-mode, for unix sockets
  std::string socket_owner;            // milter.socket-owner ("" = the user that creates it)
  std::string socket_group;            // milter.socket-group
  bool allow_non_loopback = false;     // milter.allow-non-loopback: inet sockets other hosts reach
  std::string user;                    // milter.user: drop privileges to it after opening
  std::chrono::seconds timeout{7200};  // milter.timeout: libmilter's MTA I/O timeout
  std::string authserv_id;             // milter.authserv-id: default the host name
  std::vector<std::string> trust_authserv_ids;             // milter.trust-authserv-ids (lower case)
  NetworkList trusted_networks = NetworkList::loopback();  // milter.trusted-networks
  bool add_header = true;      // milter.add-header: add our Authentication-Results
  bool dmarc_enforce = false;  // milter.dmarc-enforce
  TempErrorAction dmarc_temperror = TempErrorAction::TempFail;  // milter.dmarc-temperror
  QuarantineAction dmarc_quarantine = QuarantineAction::Hold;   // milter.dmarc-quarantine
  DmarcDiscovery dmarc_discovery = DmarcDiscovery::TreeWalk;    // milter.dmarc-discovery
  std::size_t queue_size = 10000;          // milter.queue-size: evaluations waiting for the store
  std::size_t batch_size = 500;            // milter.batch-size: evaluations per store transaction
  std::chrono::seconds flush_interval{1};  // milter.flush-interval: longest wait before a write
};

const char* to_string(TempErrorAction v) noexcept;   // "tempfail", "accept"
const char* to_string(QuarantineAction v) noexcept;  // "hold", "accept"
const char* to_string(DmarcDiscovery v) noexcept;    // "treewalk", "psl"
const char* to_string(FailureOriginal v) noexcept;   // "headers", "message"
const char* to_string(SubmitMethod v) noexcept;      // "sendmail", "smtp"

// [serve]: mailreport serve (the outbox pass).
struct ServeConfig {
  std::string user;  // serve.user: switched to after the signing keys are read ("" = stay)
  std::chrono::seconds outbox_interval{10};  // serve.outbox-interval ("10s")
};

// [dashboard]: the HTTP listener of mailreport serve (dashboard, JSON API, /metrics).
struct DashboardConfig {
  std::string listen = "127.0.0.1:8470";  // dashboard.listen: "HOST:PORT" / "[::1]:PORT"; "" = off
  // A non-loopback listen address is refused unless this is set (put a TLS reverse proxy in
  // front instead: docs/dashboard.md).
  bool allow_non_loopback = false;  // dashboard.allow-non-loopback
  // Bearer token every request but the page's static files must carry (Authorization: Bearer).
  std::string token;                // dashboard.token
  std::filesystem::path token_file;  // dashboard.token-file: the token, read at start and on
                                     // reload (must not be readable by others); "" = none
  // Without a token the listener refuses to start unless this is set (loopback only).
  bool allow_no_token = false;            // dashboard.allow-no-token
  unsigned max_connections = 64;          // dashboard.max-connections
  std::chrono::seconds timeout{30};       // dashboard.timeout: idle connection timeout
};

// [alerts]: warnings from the data that arrives (mailreport serve scans new data every
// interval), to the log (syslog, mail facility) and to the webhooks that want them.
struct AlertsConfig {
  bool enable = true;                   // alerts.enable
  std::chrono::seconds interval{10};    // alerts.interval: how often new data is examined
  // Our domains: reports about other domains raise nothing. [] = every domain reported to us.
  std::vector<std::string> domains;     // alerts.domains (lower case)
  // An incoming DMARC aggregate report raises "dmarc.failures" when its failed messages reach
  // dmarc_failure_count, or when they are at least dmarc_failure_rate of its messages and it
  // has at least dmarc_min_messages messages.
  std::uint64_t dmarc_failure_count = 100;  // alerts.dmarc-failure-count
  double dmarc_failure_rate = 0.1;          // alerts.dmarc-failure-rate (0..1)
  std::uint64_t dmarc_min_messages = 20;    // alerts.dmarc-min-messages
  // "dmarc.quarantine-reject": messages quarantined or rejected by the reporter, per report;
  // 0 = off.
  std::uint64_t dmarc_disposition_count = 1;  // alerts.dmarc-disposition-count
  // "dmarc.new-source": a source IP never seen in our reports before, sending as our domain and
  // failing DMARC.
  bool new_source = true;                   // alerts.new-source
  // "tls.failures": failed sessions in an incoming TLS report; 0 = off.
  std::uint64_t tls_failure_count = 1;      // alerts.tls-failure-count
  bool arf = true;             // alerts.arf: "arf.abuse" / "arf.auth-failure" / "arf.<type>"
  bool parse_failures = true;  // alerts.parse-failures: "report.parse-failure"
};

// [webhook.<id>]: Stalwart's webhook settings. Events are POSTed as {"events": [...]}.
struct WebhookConfig {
  std::string id;
  std::string url;                        // url: http(s)://...
  std::vector<std::string> events;        // events: names or wildcards ("dmarc.*", "*")
  std::chrono::seconds timeout{30};       // timeout ("30s")
  // throttle: the least time between two POSTs; events arriving meanwhile go in one batch.
  std::chrono::milliseconds throttle{1000};
  // discard-after: undelivered events older than this are dropped (Stalwart's default is 5m;
  // ours keeps warnings for a day).
  std::chrono::seconds discard_after{86400};
  std::string signature_key;  // signature-key: X-Signature = base64(HMAC-SHA256(key, body))
  std::vector<std::pair<std::string, std::string>> headers;  // headers.<name> = value
  std::string auth_username;  // auth.username (HTTP basic)
  std::string auth_secret;    // auth.secret
  bool allow_invalid_certs = false;  // allow-invalid-certs
};

struct LogConfig {
  LogLevel level = LogLevel::Info;  // log.level: debug | info | warning | error
};

struct Problem {
  std::string key;  // dotted key, e.g. "lmtp.max-connections"
  int line = 0;     // 1-based line in the file, 0 when not applicable
  std::string message;
  std::string describe() const;  // "FILE:LINE: key: message"-style text without the file
};

class Config {
 public:
  ReportConfig report;
  StoreConfig store;
  LmtpConfig lmtp;
  LimitsConfig limits;
  DnsConfig dns;
  MilterConfig milter;
  ServeConfig serve;
  TlsrptConfig tlsrpt;
  DashboardConfig dashboard;
  AlertsConfig alerts;
  LogConfig log;
  std::map<std::string, SignatureConfig, std::less<>> signatures;  // signature.<id>
  std::map<std::string, WebhookConfig, std::less<>> webhooks;      // webhook.<id>
  std::filesystem::path source;  // the file it came from ("" for built-in defaults)

  // The built-in defaults (what an empty file gives).
  static std::shared_ptr<const Config> defaults();

  // Evaluated value of any key as a string (for config_get and later modules' keys);
  // nullopt when the key is not set in the file.
  std::optional<std::string> get(std::string_view dotted_key) const;

  // Internal: the evaluated raw key/value pairs.
  std::map<std::string, std::string, std::less<>> raw;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when problems is not empty
  std::vector<Problem> problems;
};

// Parses the file and checks every key: unknown keys, wrong types, bad values, failed
// expressions are all reported (not just the first).
LoadResult load_file(const std::filesystem::path& path);
LoadResult load_string(std::string_view toml_text, const std::filesystem::path& name = "<string>");

// Parses "30d", "12h", "5m", "90s", "2w" or a plain number of seconds.
Result<std::chrono::seconds> parse_duration(std::string_view text);
// Parses "50MB", "256KB", "1GB", "1024" (bytes; K/M/G are powers of 1024).
Result<std::uint64_t> parse_size(std::string_view text);

// The inverse of parse_duration / parse_size, with the largest unit that divides the value
// exactly: 2592000s -> "30d", 52428800 -> "50MB", 1000 -> "1000".
std::string format_duration(std::chrono::seconds d);
std::string format_size(std::uint64_t bytes);

}  // namespace mailreport::config
