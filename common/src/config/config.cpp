// The configuration loader: one TOML file (parsed by toml++) checked key by key into an
// immutable Config. Every key, its type and its default are listed once, in kKeys below;
// conf/mailreport.toml documents the same keys with the same defaults.
//
// Loading goes in three steps, and every problem of every step is collected:
//   1. walk the TOML tree: known keys, the per-id tables ([signature."<id>"],
//      [webhook.<id>] with its headers and auth tables), and unknown keys (problems);
//   2. evaluate every string value as an expression (expression.hpp), config_get() lazily and
//      memoised, with cycle detection;
//   3. convert and check each known key (type, range, syntax) into the Config fields.
//
// Not done: reload (callers load again and swap the pointer), includes, environment overrides.
#include <strings.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "config/checks.hpp"
#include "config/expression.hpp"
#include "config/host.hpp"
#include "config/store_url.hpp"
#include "config/units.hpp"
#include "mailreport/config/config.hpp"

namespace mailreport::config {

std::string Problem::describe() const {
  std::string out;
  if (line > 0) out += std::to_string(line) + ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::optional<std::string> Config::get(std::string_view dotted_key) const {
  auto it = raw.find(dotted_key);
  if (it == raw.end()) return std::nullopt;
  return it->second;
}

namespace {

// Ids: a list of signature ids (report.*.sign), as a TOML array or, as Stalwart writes it, one
// string "['rsa-' + config_get('report.domain'), ...]". Rate: "N/period" or false. Verbatim: a
// string never evaluated as an expression (store.url: libpq quotes values with ').
// DurationMs: a duration that may be given in milliseconds ("500ms").
enum class Kind {
  String,
  Bool,
  Integer,
  Number,
  Size,
  Duration,
  DurationMs,
  Mode,
  List,
  Ids,
  Rate,
  Verbatim
};

struct KeySpec {
  std::string_view name;
  Kind kind;
  std::string_view default_text;  // as conf/mailreport.toml writes it
  bool computed = false;          // the default depends on the host or on other keys
};

constexpr std::array<std::string_view, 5> kDefaultAnalysisAddresses = {
    "dmarc@*", "dmarc-reports@*", "tlsrpt@*", "abuse@*", "postmaster@*"};
constexpr std::array<std::string_view, 2> kDefaultTrustedNetworks = {"127.0.0.0/8", "::1/128"};
// signature.<id>.headers: what Stalwart signs, plus Auto-Submitted (RFC 3834) which our
// reports carry, and the two fields RFC 8460 §5.3 says a TLS report SHOULD sign (signed only
// when present). RFC 6376 §5.4: From MUST be signed.
constexpr std::array<std::string_view, 14> kDefaultSignedHeaders = {"From",
                                                                    "To",
                                                                    "Cc",
                                                                    "Subject",
                                                                    "Date",
                                                                    "Message-ID",
                                                                    "In-Reply-To",
                                                                    "References",
                                                                    "MIME-Version",
                                                                    "Content-Type",
                                                                    "Content-Transfer-Encoding",
                                                                    "Auto-Submitted",
                                                                    "TLS-Report-Domain",
                                                                    "TLS-Report-Submitter"};

// The failure report kinds, as their sections are named.
constexpr std::array<std::string_view, 3> kFailureKinds = {"dmarc", "dkim", "spf"};

// Every key and its default, in one place.
constexpr std::array<KeySpec, 122> kKeys = {{
    {"report.domain", Kind::String, "", true},      // domain part of the host name
    {"report.submitter", Kind::String, "", true},   // the host name
    {"report.analysis.addresses", Kind::List, ""},  // kDefaultAnalysisAddresses
    {"report.analysis.store", Kind::Duration, "30d"},
    // Failure reports, with Stalwart's keys and defaults.
    {"report.dmarc.from-name", Kind::String, "Report Subsystem"},
    {"report.dmarc.from-address", Kind::String, "", true},  // 'noreply-dmarc@' + report.domain
    {"report.dmarc.subject", Kind::String, "DMARC Authentication Failure Report"},
    {"report.dmarc.sign", Kind::Ids, "", true},  // ['rsa-' + report.domain, 'ed25519-' + ...]
    {"report.dmarc.send", Kind::Rate, "1/1d"},
    {"report.dkim.from-name", Kind::String, "Report Subsystem"},
    {"report.dkim.from-address", Kind::String, "", true},  // 'noreply-dkim@' + report.domain
    {"report.dkim.subject", Kind::String, "DKIM Authentication Failure Report"},
    {"report.dkim.sign", Kind::Ids, "", true},
    {"report.dkim.send", Kind::Rate, "1/1d"},
    {"report.spf.from-name", Kind::String, "Report Subsystem"},
    {"report.spf.from-address", Kind::String, "", true},  // 'noreply-spf@' + report.domain
    {"report.spf.subject", Kind::String, "SPF Authentication Failure Report"},
    {"report.spf.sign", Kind::Ids, "", true},
    {"report.spf.send", Kind::Rate, "1/1d"},
    {"report.dsn.from-name", Kind::String, ""},
    {"report.dsn.from-address", Kind::String, ""},
    {"report.dsn.sign", Kind::Ids, ""},
    {"report.failure.include", Kind::String, "headers"},
    {"report.failure.max-original", Kind::Size, "64KB"},
    {"report.failure.redact", Kind::Bool, "false"},
    {"report.failure.redact-key", Kind::String, ""},
    {"report.submit.method", Kind::String, "sendmail"},
    {"report.submit.sendmail-path", Kind::String, "/usr/sbin/sendmail"},
    {"report.submit.smtp-url", Kind::String, "smtp://127.0.0.1:25"},
    {"report.submit.timeout", Kind::Duration, "60s"},
    {"report.submit.max-age", Kind::Duration, "3d"},
    // Aggregate reports we send (Stalwart's keys and defaults, plus spread and format).
    {"report.dmarc.aggregate.from-name", Kind::String, "DMARC Report"},
    {"report.dmarc.aggregate.from-address", Kind::String, "", true},  // 'noreply-dmarc@' + domain
    {"report.dmarc.aggregate.org-name", Kind::String, "", true},      // report.domain
    {"report.dmarc.aggregate.contact-info", Kind::String, ""},
    {"report.dmarc.aggregate.send", Kind::String, "daily"},
    {"report.dmarc.aggregate.sign", Kind::Ids, "", true},  // as report.dmarc.sign
    {"report.dmarc.aggregate.max-size", Kind::Size, "25MB"},
    {"report.dmarc.aggregate.spread", Kind::Duration, "1h"},
    {"report.dmarc.aggregate.format", Kind::String, "rfc9990"},
    {"report.tls.aggregate.from-name", Kind::String, "TLS Report"},
    {"report.tls.aggregate.from-address", Kind::String, "", true},  // 'noreply-tls@' + domain
    {"report.tls.aggregate.org-name", Kind::String, "", true},      // report.domain
    {"report.tls.aggregate.contact-info", Kind::String, ""},        // "": from-address
    {"report.tls.aggregate.send", Kind::String, "daily"},
    {"report.tls.aggregate.sign", Kind::Ids, "", true},
    {"report.tls.aggregate.max-size", Kind::Size, "25MB"},
    {"report.tls.aggregate.spread", Kind::Duration, "1h"},
    {"report.suppress-after", Kind::Integer, "5"},
    {"store.type", Kind::String, "sqlite"},
    {"store.path", Kind::String, "/var/lib/mailreport/mailreport.db"},
    {"store.url", Kind::Verbatim, ""},
    {"store.url-file", Kind::String, ""},
    {"store.pool-size", Kind::Integer, "8"},
    {"store.acquire-timeout", Kind::Duration, "10s"},
    {"lmtp.hostname", Kind::String, "", true},  // report.submitter
    {"lmtp.unix-socket", Kind::String, "/run/mailreport/lmtp.sock"},
    {"lmtp.unix-socket-mode", Kind::Mode, "0660"},
    {"lmtp.unix-socket-owner", Kind::String, ""},
    {"lmtp.unix-socket-group", Kind::String, ""},
    {"lmtp.tcp", Kind::String, ""},
    {"lmtp.allow-non-loopback", Kind::Bool, "false"},
    {"lmtp.max-connections", Kind::Integer, "32"},
    {"lmtp.idle-timeout", Kind::Duration, "5m"},
    {"lmtp.data-timeout", Kind::Duration, "10m"},
    {"lmtp.spool-dir", Kind::String, "", true},  // the directory of store.path
    {"lmtp.user", Kind::String, ""},
    {"limits.message-size", Kind::Size, "50MB"},
    {"limits.decompressed-size", Kind::Size, "256MB"},
    {"limits.compression-ratio", Kind::Number, "200"},
    {"limits.line-length", Kind::Size, "65536"},
    {"limits.command-line-length", Kind::Size, "4096"},
    {"log.level", Kind::String, "info"},
    {"dns.nameservers", Kind::List, ""},  // empty: /etc/resolv.conf
    {"dns.local-data", Kind::List, ""},
    {"dns.local-nxdomain", Kind::List, ""},
    {"dns.local-only", Kind::Bool, "false"},
    {"dns.timeout", Kind::Duration, "5s"},
    {"dns.cache-size", Kind::Size, "8MB"},
    {"milter.socket", Kind::String, "unix:/run/mailreport/milter.sock"},
    {"milter.socket-mode", Kind::Mode, "0660"},
    {"milter.socket-owner", Kind::String, ""},
    {"milter.socket-group", Kind::String, ""},
    {"milter.allow-non-loopback", Kind::Bool, "false"},
    {"milter.user", Kind::String, ""},
    {"milter.timeout", Kind::Duration, "2h"},
    {"milter.authserv-id", Kind::String, "", true},  // the host name
    {"milter.trust-authserv-ids", Kind::List, ""},
    {"milter.trusted-networks", Kind::List, ""},  // kDefaultTrustedNetworks
    {"milter.add-header", Kind::Bool, "true"},
    {"milter.dmarc-enforce", Kind::Bool, "false"},
    {"milter.dmarc-temperror", Kind::String, "tempfail"},
    {"milter.dmarc-quarantine", Kind::String, "hold"},
    {"milter.dmarc-discovery", Kind::String, "treewalk"},
    {"milter.queue-size", Kind::Integer, "10000"},
    {"milter.batch-size", Kind::Integer, "500"},
    {"milter.flush-interval", Kind::Duration, "1s"},
    {"serve.user", Kind::String, ""},
    {"serve.outbox-interval", Kind::Duration, "10s"},
    {"tlsrpt.listen", Kind::String, "/run/mailreport/tlsrpt.sock"},
    {"tlsrpt.socket-mode", Kind::Mode, "0660"},
    {"tlsrpt.socket-group", Kind::String, ""},
    {"tlsrpt.flush-interval", Kind::Duration, "5s"},
    {"tlsrpt.batch-size", Kind::Integer, "1000"},
    // The HTTP listener of mailreport serve (dashboard, JSON API, /metrics). Secrets are taken
    // as written (Verbatim), like store.url.
    {"dashboard.listen", Kind::String, "127.0.0.1:8470"},
    {"dashboard.allow-non-loopback", Kind::Bool, "false"},
    {"dashboard.token", Kind::Verbatim, ""},
    {"dashboard.token-file", Kind::String, ""},
    {"dashboard.allow-no-token", Kind::Bool, "false"},
    {"dashboard.max-connections", Kind::Integer, "64"},
    {"dashboard.timeout", Kind::Duration, "30s"},
    // Warnings from arriving data.
    {"alerts.enable", Kind::Bool, "true"},
    {"alerts.interval", Kind::Duration, "10s"},
    {"alerts.domains", Kind::List, ""},  // empty: every domain
    {"alerts.dmarc-failure-count", Kind::Integer, "100"},
    {"alerts.dmarc-failure-rate", Kind::Number, "0.1"},
    {"alerts.dmarc-min-messages", Kind::Integer, "20"},
    {"alerts.dmarc-disposition-count", Kind::Integer, "1"},
    {"alerts.new-source", Kind::Bool, "true"},
    {"alerts.tls-failure-count", Kind::Integer, "1"},
    {"alerts.arf", Kind::Bool, "true"},
    {"alerts.parse-failures", Kind::Bool, "true"},
}};

// The keys of each [signature.<id>] table (Stalwart's), named "signature.*.<key>" here.
// private-key, domain and selector have no default: they are required.
constexpr std::array<KeySpec, 6> kSignatureKeys = {{
    {"signature.*.private-key", Kind::String, ""},
    {"signature.*.domain", Kind::String, ""},
    {"signature.*.selector", Kind::String, ""},
    {"signature.*.algorithm", Kind::String, "rsa-sha256"},
    {"signature.*.headers", Kind::List, ""},  // kDefaultSignedHeaders
    {"signature.*.canonicalization", Kind::String, "relaxed/relaxed"},
}};
constexpr std::string_view kSignaturePrefix = "signature.";

// The keys of each [webhook.<id>] table (Stalwart's), named "webhook.*.<key>"; auth.* is the
// [webhook.<id>.auth] table. url has no default: it is required. headers.<name> is one entry
// per header of the [webhook.<id>.headers] table (kWebhookHeaderSpec).
constexpr std::array<KeySpec, 9> kWebhookKeys = {{
    {"webhook.*.url", Kind::String, ""},
    {"webhook.*.events", Kind::List, ""},  // ["*"]
    {"webhook.*.timeout", Kind::Duration, "30s"},
    {"webhook.*.throttle", Kind::DurationMs, "1s"},
    {"webhook.*.discard-after", Kind::Duration, "1d"},
    {"webhook.*.signature-key", Kind::Verbatim, ""},
    {"webhook.*.auth.username", Kind::String, ""},
    {"webhook.*.auth.secret", Kind::Verbatim, ""},
    {"webhook.*.allow-invalid-certs", Kind::Bool, "false"},
}};
constexpr KeySpec kWebhookHeaderSpec = {"webhook.*.headers.*", Kind::String, ""};
constexpr std::string_view kWebhookPrefix = "webhook.";

// Tables that hold the keys above.
constexpr std::array<std::string_view, 21> kSections = {"report",
                                                        "report.analysis",
                                                        "report.dmarc",
                                                        "report.dmarc.aggregate",
                                                        "report.dkim",
                                                        "report.spf",
                                                        "report.dsn",
                                                        "report.failure",
                                                        "report.submit",
                                                        "report.tls",
                                                        "report.tls.aggregate",
                                                        "store",
                                                        "lmtp",
                                                        "limits",
                                                        "dns",
                                                        "milter",
                                                        "serve",
                                                        "tlsrpt",
                                                        "dashboard",
                                                        "alerts",
                                                        "log"};

// The aggregate report kinds (report.<kind>.aggregate) and their From local-parts.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kAggregateKinds = {{
    {"dmarc", "noreply-dmarc@"},
    {"tls", "noreply-tls@"},
}};

// config_get chains deeper than this are refused (and keep the recursion bounded).
constexpr std::size_t kMaxDepth = 32;

std::string_view last_segment(std::string_view key) {
  const auto dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

const KeySpec* find_spec(std::string_view key) {
  for (const KeySpec& k : kKeys) {
    if (k.name == key) return &k;
  }
  return nullptr;
}

// "signature.<id>.<key>" split into id and key ("" when `key` is not of that shape). The id
// may hold dots (Stalwart's default ids are 'rsa-' + report.domain); the key never does.
std::pair<std::string_view, std::string_view> split_signature_key(std::string_view key) {
  if (!key.starts_with(kSignaturePrefix)) return {};
  const auto dot = key.rfind('.');
  if (dot <= kSignaturePrefix.size()) return {};
  return {key.substr(kSignaturePrefix.size(), dot - kSignaturePrefix.size()), key.substr(dot + 1)};
}

const KeySpec* find_signature_spec(std::string_view field) {
  for (const KeySpec& k : kSignatureKeys) {
    if (last_segment(k.name) == field) return &k;
  }
  return nullptr;
}

// "webhook.<id>.<field>" split into id and field ("" when `key` is not of that shape). Webhook
// ids hold no dots; the field may ("auth.username", "headers.X-Team").
std::pair<std::string_view, std::string_view> split_webhook_key(std::string_view key) {
  if (!key.starts_with(kWebhookPrefix)) return {};
  const auto dot = key.find('.', kWebhookPrefix.size());
  if (dot == std::string_view::npos || dot == kWebhookPrefix.size() || dot + 1 == key.size()) {
    return {};
  }
  return {key.substr(kWebhookPrefix.size(), dot - kWebhookPrefix.size()), key.substr(dot + 1)};
}

// The spec of a webhook field ("url", "auth.secret"); headers.<name> is not one of them.
const KeySpec* find_webhook_spec(std::string_view field) {
  for (const KeySpec& k : kWebhookKeys) {
    if (k.name.substr(std::string_view("webhook.*.").size()) == field) return &k;
  }
  return nullptr;
}

// Webhook ids name the webhook in the store's queue, the log and the metrics: letters, digits,
// '-' and '_'.
bool is_webhook_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool is_section(std::string_view key) {
  return std::find(kSections.begin(), kSections.end(), key) != kSections.end();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean lmtp.tcp?)" for a near miss, else "".
std::string suggestion(std::string_view key) {
  const KeySpec* best = nullptr;
  std::size_t best_distance = 3;
  for (const KeySpec& k : kKeys) {
    const std::size_t d = edit_distance(key, k.name);
    if (d < best_distance) {
      best = &k;
      best_distance = d;
    }
  }
  if (best == nullptr) {
    for (const KeySpec& k : kKeys) {
      if (last_segment(k.name) == last_segment(key)) {
        best = &k;
        break;
      }
    }
  }
  return best ? " (did you mean " + std::string(best->name) + "?)" : std::string();
}

int line_of(const toml::source_region& region) {
  return static_cast<int>(region.begin.line);
}

// Non-string values as TOML writes them: 32, 200.0, true, 0o660, [ 'a', 'b' ].
std::string render(const toml::node& node) {
  std::ostringstream out;
  node.visit([&out](const auto& n) { out << n; });
  return out.str();
}

std::string render_list(const std::vector<std::string>& items) {
  toml::array array;
  for (const auto& s : items) array.push_back(s);
  return render(array);
}

struct Entry {
  const toml::node* node = nullptr;
  int line = 0;
  const KeySpec* spec = nullptr;
};

struct Item {  // one evaluated element of a list value
  std::optional<std::string> text;
  int line = 0;
};

struct Slot {  // evaluation state of one key
  enum class State { Pending, Busy, Done };
  State state = State::Pending;
  std::optional<std::string> text;  // nullopt: failed (the problem has been reported)
  std::vector<Item> items;          // for list values
};

class Loader {
 public:
  explicit Loader(std::filesystem::path source) : source_(std::move(source)) {}

  LoadResult run(std::string_view text) {
    toml::table root;
    try {
      root = toml::parse(text, std::string_view(source_.native()));
    } catch (const toml::parse_error& e) {
      problem("", line_of(e.source()), std::string(e.description()));
      return finish(nullptr);
    }
    collect(root, "");
    auto config = std::make_shared<Config>();
    config->source = source_;
    for (const auto& [key, entry] : entries_) {
      if (auto v = value_of(key)) config->raw.emplace(key, *v);
    }
    build(*config);
    return finish(std::move(config));
  }

 private:
  // --- step 1: walk the tree ----------------------------------------------------------------

  void collect(const toml::table& table, const std::string& prefix) {
    for (auto&& [k, node] : table) {
      const std::string key =
          prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      const int line = line_of(k.source());
      if (k.str().find('.') != std::string_view::npos) {
        problem(key, line, "a quoted key may not contain '.'; write the dotted key without quotes");
        continue;
      }
      if (key == "signature") {
        collect_signatures(node, line);
      } else if (key == "webhook") {
        collect_webhooks(node, line);
      } else if (const KeySpec* spec = find_spec(key)) {
        entries_.emplace(key, Entry{&node, line, spec});
      } else if (is_section(key)) {
        if (const auto* sub = node.as_table()) {
          collect(*sub, key);
        } else {
          problem(key, line, "must be a table ([" + key + "])");
        }
      } else {
        problem(key, line,
                std::string(node.is_table() ? "unknown section" : "unknown key") + suggestion(key));
      }
    }
  }

  // [signature."<id>"]: one table per signing key. The id is any non-empty TOML key, dots
  // included (quoted: [signature."rsa-example.com"]).
  void collect_signatures(const toml::node& node, int line) {
    const auto* table = node.as_table();
    if (!table) {
      problem("signature", line, "must be a table of signing keys ([signature.\"<id>\"])");
      return;
    }
    for (auto&& [id_key, id_node] : *table) {
      const std::string id(id_key.str());
      const std::string prefix = std::string(kSignaturePrefix) + id;
      const int id_line = line_of(id_key.source());
      const auto* keys = id_node.as_table();
      if (id.empty() || !keys) {
        problem(prefix, id_line,
                id.empty() ? "a signature id may not be empty"
                           : "must be a table ([signature.\"" + id +
                                 "\"]) of private-key, "
                                 "domain, selector, algorithm, headers, canonicalization");
        continue;
      }
      signature_ids_.emplace(id, id_line);
      for (auto&& [k, child] : *keys) {
        const std::string key = prefix + "." + std::string(k.str());
        const int key_line = line_of(k.source());
        if (const KeySpec* spec = find_signature_spec(k.str());
            spec && k.str().find('.') == std::string_view::npos) {
          entries_.emplace(key, Entry{&child, key_line, spec});
        } else {
          problem(key, key_line,
                  std::string(child.is_table() ? "unknown section" : "unknown key") +
                      " (a signature has private-key, domain, selector, algorithm, headers "
                      "and canonicalization)");
        }
      }
    }
  }

  // [webhook.<id>]: one table per webhook, with a [webhook.<id>.headers] table of header
  // name = value and a [webhook.<id>.auth] table of username and secret.
  void collect_webhooks(const toml::node& node, int line) {
    static constexpr std::string_view kKnown =
        " (a webhook has url, events, timeout, throttle, discard-after, signature-key, headers, "
        "auth.username, auth.secret and allow-invalid-certs)";
    const auto* table = node.as_table();
    if (!table) {
      problem("webhook", line, "must be a table of webhooks ([webhook.<id>])");
      return;
    }
    for (auto&& [id_key, id_node] : *table) {
      const std::string id(id_key.str());
      const std::string prefix = std::string(kWebhookPrefix) + id;
      const int id_line = line_of(id_key.source());
      const auto* keys = id_node.as_table();
      if (!is_webhook_id(id)) {
        problem(prefix, id_line,
                "'" + id + "' is not a webhook id (letters, digits, '-' and '_', at most 64)");
        continue;
      }
      if (!keys) {
        problem(prefix, id_line, "must be a table ([webhook." + id + "]) with at least a url");
        continue;
      }
      webhook_ids_.emplace(id, id_line);
      for (auto&& [k, child] : *keys) {
        const std::string field(k.str());
        const std::string key = prefix + "." + field;
        const int key_line = line_of(k.source());
        if (field == "headers" || field == "auth") {
          const auto* sub = child.as_table();
          if (!sub) {
            problem(key, key_line,
                    field == "headers"
                        ? "must be a table of header name = value ([webhook." + id + ".headers])"
                        : "must be a table of username and secret ([webhook." + id + ".auth])");
            continue;
          }
          for (auto&& [sk, sub_node] : *sub) {
            const std::string name(sk.str());
            const std::string sub_key = key + "." + name;
            const int sub_line = line_of(sk.source());
            if (field == "headers") {
              // RFC 9110 §5.1: a field name is a token.
              if (!detail::is_http_token(name)) {
                problem(sub_key, sub_line, "'" + name + "' is not an HTTP header field name");
              } else {
                entries_.emplace(sub_key, Entry{&sub_node, sub_line, &kWebhookHeaderSpec});
              }
            } else if (const KeySpec* spec = find_webhook_spec("auth." + name);
                       spec && name.find('.') == std::string::npos) {
              entries_.emplace(sub_key, Entry{&sub_node, sub_line, spec});
            } else {
              problem(sub_key, sub_line,
                      std::string(sub_node.is_table() ? "unknown section" : "unknown key") +
                          " (auth has username and secret)");
            }
          }
        } else if (const KeySpec* spec = find_webhook_spec(field);
                   spec && field.find('.') == std::string::npos) {
          entries_.emplace(key, Entry{&child, key_line, spec});
        } else {
          problem(key, key_line,
                  std::string(child.is_table() ? "unknown section" : "unknown key") +
                      std::string(kKnown));
        }
      }
    }
  }

  // --- step 2: evaluate ---------------------------------------------------------------------

  // The spec of a known key: one of kKeys, or a key of a configured signature or webhook (a
  // header of a webhook has one only when it is set: it is in entries_).
  const KeySpec* spec_of(std::string_view key) const {
    if (const KeySpec* spec = find_spec(key)) return spec;
    if (const auto [hook, field] = split_webhook_key(key); !hook.empty()) {
      if (webhook_ids_.find(hook) == webhook_ids_.end()) return nullptr;
      if (auto it = entries_.find(std::string(key)); it != entries_.end()) return it->second.spec;
      return find_webhook_spec(field);
    }
    const auto [id, field] = split_signature_key(key);
    if (id.empty() || signature_ids_.find(id) == signature_ids_.end()) return nullptr;
    return find_signature_spec(field);
  }

  bool exists(const std::string& key) const {
    return entries_.count(key) != 0 || spec_of(key) != nullptr;
  }

  // The evaluated text of a key that exists (in the file, or a known key's default).
  std::optional<std::string> value_of(const std::string& key) {
    Slot& slot = slots_[key];  // std::map: the reference survives later insertions
    if (slot.state == Slot::State::Done) return slot.text;
    if (slot.state == Slot::State::Busy) {
      report_cycle(key);
      return std::nullopt;
    }
    if (stack_.size() >= kMaxDepth) {
      problem(key, entry_line(key),
              "config_get nested more than " + std::to_string(kMaxDepth) + " deep");
      slot.state = Slot::State::Done;
      return std::nullopt;
    }
    slot.state = Slot::State::Busy;
    stack_.push_back(key);
    std::optional<std::string> text = compute(key, slot);
    stack_.pop_back();
    // Still Busy unless a cycle through this key has already marked it as failed.
    if (slot.state == Slot::State::Busy) {
      slot.state = Slot::State::Done;
      slot.text = std::move(text);
    }
    return slot.text;
  }

  std::optional<std::string> compute(const std::string& key, Slot& slot) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return default_text(key, *spec_of(key));
    const Entry& e = it->second;
    const bool list = e.spec->kind == Kind::List || e.spec->kind == Kind::Ids;
    if (const auto* s = e.node->as_string()) {
      if (e.spec->kind == Kind::Ids) return evaluate_id_list(key, s->get(), e.line, slot);
      if (e.spec->kind == Kind::Verbatim) return std::string(s->get());
      return evaluate(key, s->get(), e.line);
    }
    if (const auto* array = e.node->as_array(); array && list) {
      bool ok = true;
      std::vector<std::string> texts;
      for (const toml::node& element : *array) {
        Item item{std::nullopt, line_of(element.source())};
        if (const auto* s = element.as_string()) {
          item.text = evaluate(key, s->get(), item.line);
        } else {
          item.text = render(element);  // reported as a wrong type in step 3
        }
        ok = ok && item.text.has_value();
        if (item.text) texts.push_back(*item.text);
        slot.items.push_back(std::move(item));
      }
      if (!ok) return std::nullopt;
      return render_list(texts);
    }
    return render(*e.node);
  }

  // Stalwart's one-string list, "['rsa-' + config_get('report.domain'), 'b']": the text
  // between the brackets split at the commas outside 'literals', each element an expression.
  // Without brackets the whole string is one element.
  std::optional<std::string> evaluate_id_list(const std::string& key, std::string_view text,
                                              int line, Slot& slot) {
    std::string_view inner = text;
    while (!inner.empty() && (inner.front() == ' ' || inner.front() == '\t'))
      inner.remove_prefix(1);
    while (!inner.empty() && (inner.back() == ' ' || inner.back() == '\t')) inner.remove_suffix(1);
    std::vector<std::string_view> elements;
    if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']') {
      inner = inner.substr(1, inner.size() - 2);
      bool in_literal = false;
      std::size_t start = 0;
      for (std::size_t i = 0; i < inner.size(); ++i) {
        const char c = inner[i];
        if (in_literal && c == '\\') {
          ++i;  // \' and \\ (the expression parser checks the escape)
        } else if (c == '\'') {
          in_literal = !in_literal;
        } else if (c == ',' && !in_literal) {
          elements.push_back(inner.substr(start, i - start));
          start = i + 1;
        }
      }
      elements.push_back(inner.substr(start));
      // "[]" and a trailing comma ("['a',]") add no element.
      if (elements.back().find_first_not_of(" \t") == std::string_view::npos) elements.pop_back();
    } else {
      elements.push_back(inner);
    }
    bool ok = true;
    std::vector<std::string> texts;
    for (std::string_view element : elements) {
      Item item{std::nullopt, line};
      if (element.find_first_not_of(" \t") == std::string_view::npos) {
        problem(key, line, "an empty element in the list '" + std::string(text) + "'");
      } else {
        const auto first = element.find_first_not_of(" \t");
        const auto last = element.find_last_not_of(" \t");
        item.text = evaluate(key, element.substr(first, last - first + 1), line);
      }
      ok = ok && item.text.has_value();
      if (item.text) texts.push_back(*item.text);
      slot.items.push_back(std::move(item));
    }
    if (!ok) return std::nullopt;
    return render_list(texts);
  }

  // The default elements of a list key (nullopt when a key they depend on failed).
  std::optional<std::vector<std::string>> default_list(std::string_view key) {
    if (key == "report.analysis.addresses") {
      return std::vector<std::string>(kDefaultAnalysisAddresses.begin(),
                                      kDefaultAnalysisAddresses.end());
    }
    if (key == "milter.trusted-networks") {
      return std::vector<std::string>(kDefaultTrustedNetworks.begin(),
                                      kDefaultTrustedNetworks.end());
    }
    // Stalwart: a webhook without events gets every event.
    if (key.starts_with(kWebhookPrefix) && key.ends_with(".events")) {
      return std::vector<std::string>{"*"};
    }
    if (key.starts_with(kSignaturePrefix) && key.ends_with(".headers")) {
      return std::vector<std::string>(kDefaultSignedHeaders.begin(), kDefaultSignedHeaders.end());
    }
    for (std::string_view kind : {"dmarc", "dkim", "spf", "dmarc.aggregate", "tls.aggregate"}) {
      // Stalwart: sign = "['rsa-' + config_get('report.domain'), 'ed25519-' + config_get(...)]",
      // for the failure and the aggregate reports alike.
      if (key == "report." + std::string(kind) + ".sign") {
        auto domain = value_of("report.domain");
        if (!domain) return std::nullopt;
        return std::vector<std::string>{"rsa-" + *domain, "ed25519-" + *domain};
      }
    }
    return std::vector<std::string>{};
  }

  std::optional<std::string> default_text(const std::string& key, const KeySpec& spec) {
    for (std::string_view kind : kFailureKinds) {
      // Stalwart: from-address = "'noreply-dmarc@' + config_get('report.domain')".
      if (key == "report." + std::string(kind) + ".from-address") {
        auto domain = value_of("report.domain");
        if (!domain) return std::nullopt;
        return "noreply-" + std::string(kind) + "@" + *domain;
      }
    }
    for (const auto& [kind, local] : kAggregateKinds) {
      const std::string p = "report." + std::string(kind) + ".aggregate.";
      // Stalwart: from-address = "'noreply-dmarc@' + config_get('report.domain')" (tls:
      // 'noreply-tls@'), org-name = "config_get('report.domain')".
      if (key == p + "from-address") {
        auto domain = value_of("report.domain");
        if (!domain) return std::nullopt;
        return std::string(local) + *domain;
      }
      if (key == p + "org-name") return value_of("report.domain");
    }
    if (spec.name == "report.domain") return detail::host_names().domain;
    if (spec.name == "report.submitter") return detail::host_names().fqdn;
    if (spec.name == "lmtp.hostname") return value_of("report.submitter");
    // RFC 8601 §2.5: the authserv-id names the host (or ADMD) that did the checks.
    if (spec.name == "milter.authserv-id") return detail::host_names().fqdn;
    if (spec.name == "lmtp.spool-dir") {
      auto path = value_of("store.path");
      if (!path) return std::nullopt;
      auto dir = std::filesystem::path(*path).parent_path();
      return dir.empty() ? std::string(".") : dir.string();
    }
    if (spec.kind == Kind::List || spec.kind == Kind::Ids) {
      auto items = default_list(key);
      if (!items) return std::nullopt;
      return render_list(*items);
    }
    return std::string(spec.default_text);
  }

  // A string value: an expression when it looks like one, else the text as written.
  std::optional<std::string> evaluate(const std::string& key, std::string_view text, int line) {
    if (!detail::looks_like_expression(text)) return std::string(text);
    auto terms = detail::parse_expression(text);
    if (!terms.ok()) {
      problem(key, line, terms.error().message);
      return std::nullopt;
    }
    std::string out;
    bool ok = true;
    for (const detail::Term& term : terms.value()) {
      if (term.kind == detail::Term::Kind::Literal) {
        out += term.text;
        continue;
      }
      if (!exists(term.text)) {
        problem(key, line, "config_get('" + term.text + "'): no such key" + suggestion(term.text));
        ok = false;
        continue;
      }
      auto v = value_of(term.text);  // a failure there is reported where it happened
      if (v) {
        out += *v;
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  void report_cycle(const std::string& key) {
    const auto start = std::find(stack_.begin(), stack_.end(), key);
    std::string path;
    for (auto it = start; it != stack_.end(); ++it) path += *it + " -> ";
    path += key;
    for (auto it = start; it != stack_.end(); ++it) {
      Slot& s = slots_[*it];
      s.state = Slot::State::Done;
      s.text.reset();
      if (entries_.count(*it)) problem(*it, entry_line(*it), "config_get cycle: " + path);
    }
  }

  int entry_line(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? 0 : it->second.line;
  }

  // --- step 3: typed values -----------------------------------------------------------------

  const Entry* entry(std::string_view key) const {
    auto it = entries_.find(std::string(key));
    return it == entries_.end() ? nullptr : &it->second;
  }

  // Only called for keys set in the file.
  void wrong_type(std::string_view key, std::string_view expected) {
    const Entry& e = entries_.at(std::string(key));
    problem(std::string(key), e.line,
            "must be " + std::string(expected) + ", not " + type_name(*e.node));
  }

  static std::string type_name(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer: return "an integer";
      case toml::node_type::floating_point: return "a number";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::array: return "an array";
      case toml::node_type::table: return "a table";
      default: return "a date/time";
    }
  }

  std::optional<std::string> get_string(std::string_view key) {
    const Entry* e = entry(key);
    if (e && !e->node->is_string()) {
      wrong_type(key, "a string");
      return std::nullopt;
    }
    return value_of(std::string(key));
  }

  std::optional<bool> get_bool(std::string_view key) {
    const Entry* e = entry(key);
    if (!e) return spec_of(key)->default_text == "true";
    if (const auto* b = e->node->as_boolean()) return b->get();
    wrong_type(key, "true or false");
    return std::nullopt;
  }

  std::optional<std::int64_t> get_integer(std::string_view key) {
    const Entry* e = entry(key);
    if (!e) return std::stoll(std::string(spec_of(key)->default_text));
    if (const auto* i = e->node->as_integer()) return i->get();
    wrong_type(key, "an integer");
    return std::nullopt;
  }

  std::optional<double> get_number(std::string_view key) {
    const Entry* e = entry(key);
    if (!e) return std::stod(std::string(spec_of(key)->default_text));
    if (const auto* f = e->node->as_floating_point()) return f->get();
    if (const auto* i = e->node->as_integer()) return static_cast<double>(i->get());
    wrong_type(key, "a number");
    return std::nullopt;
  }

  // Sizes and durations: a TOML integer, or a string (maybe an expression) with a unit.
  template <class T, class Parse>
  std::optional<T> get_with_unit(std::string_view key, std::string_view expected, Parse parse) {
    const Entry* e = entry(key);
    std::optional<std::string> text;
    if (const auto* i = e ? e->node->as_integer() : nullptr) {
      if (i->get() < 0) {
        problem(std::string(key), e->line, "must not be negative");
        return std::nullopt;
      }
      text = std::to_string(i->get());
    } else if (e && !e->node->is_string()) {
      wrong_type(key, expected);
      return std::nullopt;
    } else {
      text = value_of(std::string(key));
      if (!text) return std::nullopt;
    }
    auto parsed = parse(*text);
    if (!parsed.ok()) {
      problem(std::string(key), e ? e->line : 0, parsed.error().message);
      return std::nullopt;
    }
    return parsed.value();
  }

  std::optional<std::uint64_t> get_size(std::string_view key) {
    return get_with_unit<std::uint64_t>(key, "a size like \"50MB\" or a number of bytes",
                                        [](std::string_view t) { return parse_size(t); });
  }

  std::optional<std::chrono::seconds> get_duration(std::string_view key) {
    return get_with_unit<std::chrono::seconds>(
        key, "a duration like \"30d\" or a number of seconds",
        [](std::string_view t) { return parse_duration(t); });
  }

  std::optional<std::chrono::milliseconds> get_duration_ms(std::string_view key) {
    return get_with_unit<std::chrono::milliseconds>(
        key, "a duration like \"500ms\" or \"1s\", or a number of seconds",
        [](std::string_view t) { return detail::parse_duration_ms(t); });
  }

  std::optional<mode_t> get_mode(std::string_view key) {
    const Entry* e = entry(key);
    if (e) {
      if (const auto* i = e->node->as_integer()) {
        // TOML 0o660 is an octal integer; a decimal 660 is almost surely a forgotten "0".
        if ((i->flags() & toml::value_flags::format_as_octal) == toml::value_flags::none) {
          problem(std::string(key), e->line, "write the mode in octal, as a string: \"0660\"");
          return std::nullopt;
        }
        if (i->get() < 0 || i->get() > 0777) {
          problem(std::string(key), e->line, "only permission bits (at most 0777) are allowed");
          return std::nullopt;
        }
        return static_cast<mode_t>(i->get());
      }
      if (!e->node->is_string()) {
        wrong_type(key, "an octal string like \"0660\"");
        return std::nullopt;
      }
    }
    auto text = value_of(std::string(key));
    if (!text) return std::nullopt;
    auto mode = detail::parse_mode(*text);
    if (!mode.ok()) {
      problem(std::string(key), e ? e->line : 0, mode.error().message);
      return std::nullopt;
    }
    return mode.value();
  }

  std::optional<std::vector<Item>> get_list(std::string_view key) {
    const Entry* e = entry(key);
    if (!e) {
      auto defaults = default_list(key);
      if (!defaults) return std::nullopt;
      std::vector<Item> items;
      for (auto& p : *defaults) items.push_back({std::move(p), 0});
      return items;
    }
    const auto* array = e->node->as_array();
    const bool ids = e->spec && e->spec->kind == Kind::Ids;
    if (!array && !(ids && e->node->is_string())) {
      wrong_type(key, ids ? "an array of signature ids" : "an array of strings");
      return std::nullopt;
    }
    (void)value_of(std::string(key));  // evaluates the elements into the slot
    bool ok = true;
    if (array) {
      for (const toml::node& element : *array) {
        if (!element.is_string()) {
          problem(std::string(key), line_of(element.source()),
                  "must be an array of strings, not one holding " + type_name(element));
          ok = false;
        }
      }
    }
    const Slot& slot = slots_[std::string(key)];
    for (const Item& item : slot.items) ok = ok && item.text.has_value();
    if (!ok) return std::nullopt;
    return slot.items;
  }

  // A check on a key's value; reports `message` at the key's line when `good` is false.
  bool check(std::string_view key, bool good, std::string message) {
    if (!good) problem(std::string(key), entry_line(std::string(key)), std::move(message));
    return good;
  }

  bool is_set(std::string_view key) const { return entry(key) != nullptr; }

  void build(Config& c) {
    // [report]
    if (auto v = get_string("report.domain")) {
      // Computed defaults are not checked: check-config shows what the host gave.
      if (!is_set("report.domain") ||
          check("report.domain", detail::is_domain_name(*v), "'" + *v + "' is not a domain name")) {
        c.report.domain = *v;
      }
    }
    if (auto v = get_string("report.submitter")) {
      if (!is_set("report.submitter") || check("report.submitter", detail::is_domain_name(*v),
                                               "'" + *v + "' is not a host name")) {
        c.report.submitter = *v;
      }
    }
    if (auto items = get_list("report.analysis.addresses")) {
      std::vector<std::string> patterns;
      for (const Item& item : *items) {
        if (auto why = detail::check_address_pattern(*item.text)) {
          problem("report.analysis.addresses", item.line, *why);
        } else {
          patterns.push_back(*item.text);
        }
      }
      if (check("report.analysis.addresses", !items->empty(),
                "must list at least one pattern (nothing would be accepted)")) {
        c.report.analysis_addresses = AddressPatterns(std::move(patterns));
      }
    }
    if (auto d = get_duration("report.analysis.store")) {
      if (check("report.analysis.store", d->count() > 0, "must be longer than 0s")) {
        c.report.analysis_retention = *d;
      }
    }

    build_signatures(c);
    for (auto [kind, settings] :
         {std::pair{"dmarc", &c.report.dmarc}, std::pair{"dkim", &c.report.dkim},
          std::pair{"spf", &c.report.spf}}) {
      build_failure_kind(kind, *settings);
    }
    build_dsn(c.report.dsn);
    build_failure_format(c.report.failure);
    build_submit(c.report.submit);
    build_aggregate("dmarc", c.report.dmarc_aggregate);
    build_aggregate("tls", c.report.tls_aggregate);
    if (auto n = get_integer("report.suppress-after")) {
      if (check("report.suppress-after", *n >= 0,
                "must be 0 (never suppress) or a positive integer") &&
          check("report.suppress-after", *n <= 1'000'000, "must be at most 1000000")) {
        c.report.suppress_after = static_cast<unsigned>(*n);
      }
    }

    build_store(c.store);

    // [lmtp]
    if (auto v = get_string("lmtp.hostname")) {
      if (!is_set("lmtp.hostname") ||
          check("lmtp.hostname", detail::is_domain_name(*v), "'" + *v + "' is not a host name")) {
        c.lmtp.hostname = *v;
      }
    }
    if (auto v = get_string("lmtp.unix-socket")) {
      // sockaddr_un.sun_path is 108 bytes on Linux, with the terminating NUL.
      if (check("lmtp.unix-socket", v->empty() || v->front() == '/',
                "must be an absolute path, or \"\" for no socket") &&
          check("lmtp.unix-socket", v->size() < 108, "is longer than a socket path may be (107)")) {
        c.lmtp.unix_socket = *v;
      }
    }
    if (auto m = get_mode("lmtp.unix-socket-mode")) c.lmtp.unix_socket_mode = *m;
    for (auto [key, field] : {std::pair{"lmtp.unix-socket-owner", &c.lmtp.unix_socket_owner},
                              std::pair{"lmtp.unix-socket-group", &c.lmtp.unix_socket_group},
                              std::pair{"lmtp.user", &c.lmtp.user}}) {
      if (auto v = get_string(key)) {
        if (check(key, v->empty() || detail::is_user_name(*v),
                  "'" + *v + "' is not a user or group name")) {
          *field = *v;
        }
      }
    }
    if (auto b = get_bool("lmtp.allow-non-loopback")) c.lmtp.allow_non_loopback = *b;
    if (auto v = get_string("lmtp.tcp")) {
      if (v->empty()) {
        c.lmtp.tcp.clear();
      } else if (auto ep = detail::parse_endpoint(*v); !ep.ok()) {
        check("lmtp.tcp", false, ep.error().message);
      } else if (check("lmtp.tcp", ep->loopback || c.lmtp.allow_non_loopback,
                       // RFC 2033 §1: LMTP is not for wide-area networks; it has no
                       // authentication, so by default only this host may connect.
                       "'" + *v +
                           "' is not a loopback address (127.0.0.1:PORT, [::1]:PORT, "
                           "localhost:PORT); set lmtp.allow-non-loopback = true to allow it")) {
        c.lmtp.tcp = *v;
      }
    }
    if (auto n = get_integer("lmtp.max-connections")) {
      if (check("lmtp.max-connections", *n > 0, "must be a positive integer") &&
          check("lmtp.max-connections", *n <= 65535, "must be at most 65535")) {
        c.lmtp.max_connections = static_cast<unsigned>(*n);
      }
    }
    if (auto d = get_duration("lmtp.idle-timeout")) {
      if (check("lmtp.idle-timeout", d->count() > 0, "must be longer than 0s")) {
        c.lmtp.idle_timeout = *d;
      }
    }
    if (auto d = get_duration("lmtp.data-timeout")) {
      if (check("lmtp.data-timeout", d->count() > 0, "must be longer than 0s")) {
        c.lmtp.data_timeout = *d;
      }
    }
    if (auto v = get_string("lmtp.spool-dir")) {
      if (check("lmtp.spool-dir", !v->empty(), "must not be empty")) c.lmtp.spool_dir = *v;
    }

    // [limits]
    if (auto s = get_size("limits.message-size")) {
      if (check("limits.message-size", *s > 0, "must be larger than 0")) {
        c.limits.message_size = *s;
      }
    }
    if (auto s = get_size("limits.decompressed-size")) {
      if (check("limits.decompressed-size", *s > 0, "must be larger than 0")) {
        c.limits.decompressed_size = *s;
      }
    }
    if (auto r = get_number("limits.compression-ratio")) {
      if (check("limits.compression-ratio", std::isfinite(*r) && *r >= 1.0,
                "must be a number of at least 1")) {
        c.limits.compression_ratio = *r;
      }
    }
    // RFC 5321 §4.5.3.1.6: a text line may be 1000 octets with its CRLF; §4.5.3.1.4: a
    // command line 512. Smaller limits would refuse legal input.
    if (auto s = get_size("limits.line-length")) {
      if (check("limits.line-length", *s >= 1000, "must be at least 1000 (RFC 5321 §4.5.3.1.6)")) {
        c.limits.line_length = static_cast<std::size_t>(*s);
      }
    }
    if (auto s = get_size("limits.command-line-length")) {
      if (check("limits.command-line-length", *s >= 512,
                "must be at least 512 (RFC 5321 §4.5.3.1.4)")) {
        c.limits.command_line_length = static_cast<std::size_t>(*s);
      }
    }

    build_dns(c.dns);
    build_milter(c.milter);

    // [serve]
    if (auto v = get_string("serve.user")) {
      if (check("serve.user", v->empty() || detail::is_user_name(*v),
                "'" + *v + "' is not a user name")) {
        c.serve.user = *v;
      }
    }
    if (auto d = get_duration("serve.outbox-interval")) {
      if (check("serve.outbox-interval", d->count() > 0, "must be longer than 0s")) {
        c.serve.outbox_interval = *d;
      }
    }

    build_tlsrpt(c.tlsrpt);
    build_dashboard(c.dashboard);
    build_alerts(c.alerts);
    build_webhooks(c);

    // [log]
    if (auto v = get_string("log.level")) {
      static constexpr std::array<std::pair<std::string_view, LogLevel>, 4> kLevels = {{
          {"debug", LogLevel::Debug},
          {"info", LogLevel::Info},
          {"warning", LogLevel::Warning},
          {"error", LogLevel::Error},
      }};
      auto it = std::find_if(kLevels.begin(), kLevels.end(),
                             [&](const auto& l) { return l.first == *v; });
      if (check("log.level", it != kLevels.end(),
                "'" + *v + "': must be debug, info, warning or error")) {
        c.log.level = it->second;
      }
    }
  }

  // A string key with a fixed set of spellings; `names` in the order the message lists them.
  template <class E, std::size_t N>
  void get_choice(std::string_view key, const std::array<std::pair<std::string_view, E>, N>& names,
                  E& field) {
    auto v = get_string(key);
    if (!v) return;
    std::string allowed;
    for (std::size_t i = 0; i < N; ++i) {
      if (names[i].first == *v) {
        field = names[i].second;
        return;
      }
      allowed += (i == 0       ? ""
                  : i + 1 == N ? " or "
                               : ", ") +
                 ("\"" + std::string(names[i].first) + "\"");
    }
    check(key, false, "'" + *v + "': must be " + allowed);
  }

  // A list of strings each checked by `why_bad` (nullopt when fine).
  template <class Check>
  std::optional<std::vector<std::string>> get_checked_list(std::string_view key, Check why_bad) {
    auto items = get_list(key);
    if (!items) return std::nullopt;
    std::vector<std::string> out;
    bool ok = true;
    for (const Item& item : *items) {
      if (auto why = why_bad(*item.text)) {
        problem(std::string(key), item.line, *why);
        ok = false;
      } else {
        out.push_back(*item.text);
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // A from-name or subject: one line of text (the builder encodes it, RFC 2047).
  std::optional<std::string> get_line(std::string_view key, bool may_be_empty) {
    auto v = get_string(key);
    if (!v) return std::nullopt;
    const bool one_line = std::none_of(v->begin(), v->end(), [](char ch) {
      return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
    });
    if (!check(key, one_line, "must be one line of text (no control characters)")) {
      return std::nullopt;
    }
    if (!check(key, may_be_empty || !v->empty(), "must not be empty")) return std::nullopt;
    return v;
  }

  // A from-address: a plain address; "" allowed when `may_be_empty`. Computed defaults (from
  // the host's name) are not checked, as for report.domain.
  std::optional<std::string> get_address(std::string_view key, bool may_be_empty) {
    auto v = get_string(key);
    if (!v || !is_set(key) || (may_be_empty && v->empty())) return v;
    if (auto why = detail::check_mailbox(*v)) {
      check(key, false, *why);
      return std::nullopt;
    }
    return v;
  }

  // report.*.sign: signature ids. An id of an explicit list must name a [signature.<id>];
  // ids of the default list (written out or not) that have none are dropped, so that a site
  // without keys sends unsigned reports.
  std::optional<std::vector<std::string>> get_sign(std::string_view key) {
    auto items = get_list(key);
    if (!items) return std::nullopt;
    std::vector<std::string> texts;
    for (const Item& item : *items) texts.push_back(*item.text);
    const bool is_default = !is_set(key) || default_list(key) == texts;
    std::vector<std::string> ids;
    bool ok = true;
    for (const Item& item : *items) {
      if (signature_ids_.find(*item.text) != signature_ids_.end()) {
        if (std::find(ids.begin(), ids.end(), *item.text) == ids.end()) ids.push_back(*item.text);
      } else if (!is_default) {
        problem(std::string(key), item.line,
                "no signature '" + *item.text + "' (a [signature.\"" + *item.text +
                    "\"] table with its private-key, domain and selector)");
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return ids;
  }

  // report.*.send: "N/period" (or Stalwart's "[N, period]"); false (or "false") = never.
  // nullopt: a problem was reported.
  std::optional<std::optional<RateLimit>> get_rate(std::string_view key) {
    const Entry* e = entry(key);
    std::optional<std::string> text;
    if (e && e->node->is_boolean()) {
      if (check(key, !e->node->as_boolean()->get(),
                "true is not a rate: write \"N/period\" (e.g. \"1/1d\"), or false to send "
                "nothing")) {
        return std::optional<RateLimit>();
      }
      return std::nullopt;
    }
    if (e && !e->node->is_string()) {
      wrong_type(key, "a rate like \"1/1d\" or false");
      return std::nullopt;
    }
    text = value_of(std::string(key));
    if (!text) return std::nullopt;
    if (*text == "false") return std::optional<RateLimit>();
    auto rate = parse_rate_limit(*text);
    if (!rate.ok()) {
      check(key, false, rate.error().message + "; or false to send nothing");
      return std::nullopt;
    }
    return std::optional<RateLimit>(*rate);
  }

  void build_signatures(Config& c) {
    for (const auto& [id, line] : signature_ids_) {
      const std::string prefix = std::string(kSignaturePrefix) + id + ".";
      SignatureConfig sig;
      sig.id = id;
      bool ok = true;
      for (std::string_view required : {"private-key", "domain", "selector"}) {
        if (!is_set(prefix + std::string(required))) {
          problem(prefix + std::string(required), line,
                  "missing: every signature needs private-key, domain and selector");
          ok = false;
        }
      }
      if (!ok) continue;
      // The key file is read by mailreport serve and mailreport-milter at start (outbound/
      // signer.hpp): whether it exists and is readable is their check, not the file's.
      if (auto v = get_string(prefix + "private-key")) {
        ok = check(prefix + "private-key", !v->empty(), "must not be empty") && ok;
        sig.private_key = *v;
      }
      // RFC 6376 §3.5: d= is a domain name, s= a sequence of sub-domains.
      if (auto v = get_string(prefix + "domain")) {
        ok = check(prefix + "domain", detail::is_domain_name(*v),
                   "'" + *v + "' is not a domain name") &&
             ok;
        sig.domain = *v;
      }
      if (auto v = get_string(prefix + "selector")) {
        ok = check(prefix + "selector", detail::is_domain_name(*v),
                   "'" + *v + "' is not a DKIM selector (dot-separated labels)") &&
             ok;
        sig.selector = *v;
      }
      if (auto v = get_string(prefix + "algorithm")) {
        // RFC 6376 §3.3 rsa-sha256; RFC 8463 ed25519-sha256. rsa-sha1 is not offered (RFC 8301).
        ok = check(prefix + "algorithm", *v == "rsa-sha256" || *v == "ed25519-sha256",
                   "'" + *v + "': must be \"rsa-sha256\" or \"ed25519-sha256\"") &&
             ok;
        sig.algorithm = *v;
      }
      if (auto v = get_checked_list(prefix + "headers", [](const std::string& name) {
            return detail::is_field_name(name)
                       ? std::nullopt
                       : std::optional<std::string>("'" + name + "' is not a header field name");
          })) {
        const bool has_from = std::any_of(v->begin(), v->end(), [](const std::string& h) {
          return strcasecmp(h.c_str(), "From") == 0;
        });
        // RFC 6376 §5.4: the From header field MUST be signed.
        ok = check(prefix + "headers", has_from, "must include From (RFC 6376 §5.4)") && ok;
        sig.headers = std::move(*v);
      } else {
        ok = false;
      }
      if (auto v = get_string(prefix + "canonicalization")) {
        auto canon = detail::parse_canonicalization(*v);
        if (check(prefix + "canonicalization", canon.ok(),
                  canon.ok() ? std::string() : canon.error().message)) {
          sig.canonicalization = *canon;
        } else {
          ok = false;
        }
      }
      if (ok) c.signatures.emplace(id, std::move(sig));
    }
  }

  void build_failure_kind(std::string_view kind, FailureReportSettings& f) {
    const std::string p = "report." + std::string(kind) + ".";
    if (auto v = get_line(p + "from-name", true)) f.from_name = *v;
    if (auto v = get_address(p + "from-address", false)) f.from_address = *v;
    if (auto v = get_line(p + "subject", false)) f.subject = *v;
    if (auto v = get_sign(p + "sign")) f.sign = std::move(*v);
    if (auto v = get_rate(p + "send")) f.send = *v;
  }

  void build_dsn(DsnSettings& d) {
    if (auto v = get_line("report.dsn.from-name", true)) d.from_name = *v;
    if (auto v = get_address("report.dsn.from-address", true)) d.from_address = *v;
    if (auto v = get_sign("report.dsn.sign")) d.sign = std::move(*v);
  }

  void build_failure_format(FailureFormatConfig& f) {
    get_choice("report.failure.include",
               std::array{std::pair{std::string_view("headers"), FailureOriginal::Headers},
                          std::pair{std::string_view("message"), FailureOriginal::Message}},
               f.include);
    if (auto s = get_size("report.failure.max-original")) {
      // The original's header block must fit; a few lines of Received alone take 1KB.
      if (check("report.failure.max-original", *s >= 1024, "must be at least 1KB")) {
        f.max_original = *s;
      }
    }
    if (auto b = get_bool("report.failure.redact")) f.redact = *b;
    if (auto v = get_string("report.failure.redact-key")) {
      f.redact_key = *v;
      // RFC 6590 §4: the transformation must not be reversible by those who get the report; a
      // short key lets them hash a dictionary of local-parts and compare.
      if (f.redact) {
        const std::string_view key = is_set("report.failure.redact-key")
                                         ? "report.failure.redact-key"
                                         : "report.failure.redact";
        check(key, v->size() >= 16,
              "report.failure.redact = true needs a redact-key of at least 16 characters");
      }
    }
  }

  void build_submit(SubmitConfig& s) {
    get_choice("report.submit.method",
               std::array{std::pair{std::string_view("sendmail"), SubmitMethod::Sendmail},
                          std::pair{std::string_view("smtp"), SubmitMethod::Smtp}},
               s.method);
    if (auto v = get_string("report.submit.sendmail-path")) {
      if (check("report.submit.sendmail-path", !v->empty() && v->front() == '/',
                "must be an absolute path")) {
        s.sendmail_path = *v;
      }
    }
    if (auto v = get_string("report.submit.smtp-url")) {
      std::string lower = *v;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const std::size_t scheme = lower.starts_with("smtp://")    ? 7
                                 : lower.starts_with("smtps://") ? 8
                                                                 : 0;
      if (check("report.submit.smtp-url", scheme != 0 && v->size() > scheme,
                "'" + *v + "': must be smtp://HOST[:PORT] or smtps://HOST[:PORT]")) {
        s.smtp_url = *v;
      }
    }
    if (auto d = get_duration("report.submit.timeout")) {
      if (check("report.submit.timeout", d->count() > 0, "must be longer than 0s")) s.timeout = *d;
    }
    if (auto d = get_duration("report.submit.max-age")) {
      if (check("report.submit.max-age", d->count() > 0, "must be longer than 0s")) s.max_age = *d;
    }
  }

  // report.dmarc.aggregate | report.tls.aggregate.
  void build_aggregate(std::string_view kind, AggregateReportSettings& a) {
    const bool tls = kind == "tls";
    const std::string p = "report." + std::string(kind) + ".aggregate.";
    a.from_name = tls ? "TLS Report" : "DMARC Report";
    if (auto v = get_line(p + "from-name", true)) a.from_name = *v;
    if (auto v = get_address(p + "from-address", false)) a.from_address = *v;
    // RFC 7489 §7.2.2 / RFC 8460 §4.4: org-name is required in every report.
    if (auto v = get_line(p + "org-name", false)) a.org_name = *v;
    if (auto v = get_line(p + "contact-info", true)) a.contact_info = *v;
    // RFC 8460 §4.4: contact-info is required in a TLS report; the From address serves.
    if (tls && a.contact_info.empty()) a.contact_info = a.from_address;
    if (auto f = get_frequency(p + "send", tls)) a.send = *f;
    if (auto v = get_sign(p + "sign")) a.sign = std::move(*v);
    if (auto s = get_size(p + "max-size")) {
      // A report compresses well, but its message (headers, text part, base64) needs room.
      if (check(p + "max-size", *s >= 4096, "must be at least 4KB")) a.max_size = *s;
    }
    if (auto d = get_duration(p + "spread")) {
      const auto interval = interval_length(a.send);
      // The spread must end before the next interval's reports start.
      if (check(p + "spread", a.send == AggregateFrequency::Never || *d <= interval,
                "must not be longer than the interval (send = \"" + std::string(to_string(a.send)) +
                    "\": " + format_duration(interval) + ")")) {
        a.spread = *d;
      }
    }
    if (!tls) {
      get_choice(p + "format",
                 std::array{std::pair{std::string_view("rfc9990"), DmarcAggregateFormat::Rfc9990},
                            std::pair{std::string_view("rfc7489"), DmarcAggregateFormat::Rfc7489}},
                 a.format);
    }
  }

  // report.*.aggregate.send: hourly | daily | weekly | never, or false (= never). TLS reports
  // are daily or nothing. nullopt: a problem was reported.
  std::optional<AggregateFrequency> get_frequency(const std::string& key, bool tls) {
    const Entry* e = entry(key);
    if (e && e->node->is_boolean()) {
      if (check(key, !e->node->as_boolean()->get(),
                tls ? "true is not a frequency: write \"daily\", or false to send nothing"
                    : "true is not a frequency: write \"hourly\", \"daily\" or \"weekly\", "
                      "or false to send nothing")) {
        return AggregateFrequency::Never;
      }
      return std::nullopt;
    }
    auto v = get_string(key);
    if (!v) return std::nullopt;
    if (*v == "never" || *v == "false") return AggregateFrequency::Never;
    if (*v == "daily") return AggregateFrequency::Daily;
    if (tls) {
      // RFC 8460 §4.1: a TLS report covers one full UTC day.
      check(key, false,
            "'" + *v +
                "': must be \"daily\" or \"never\" (RFC 8460 §4.1: a TLS report covers "
                "one UTC day)");
      return std::nullopt;
    }
    if (*v == "hourly") return AggregateFrequency::Hourly;
    if (*v == "weekly") return AggregateFrequency::Weekly;
    check(key, false, "'" + *v + "': must be \"hourly\", \"daily\", \"weekly\" or \"never\"");
    return std::nullopt;
  }

  // [store]: SQLite (path) or PostgreSQL (url or url-file, pool-size, acquire-timeout).
  void build_store(StoreConfig& st) {
    if (auto v = get_string("store.type")) {
      if (check("store.type", *v == "sqlite" || *v == "postgresql",
                "'" + *v + "': must be \"sqlite\" or \"postgresql\"")) {
        st.type = *v;
      }
    }
    if (auto v = get_string("store.path")) {
      if (check("store.path", !v->empty(), "must not be empty")) st.path = *v;
    }
    const bool postgres = st.type == "postgresql";
    const auto url = get_string("store.url");
    const auto url_file = get_string("store.url-file");
    const bool has_url = url && !url->empty();  // "" is the default: no URL
    const bool has_url_file = url_file && !url_file->empty();
    if (postgres && has_url && url) {
      if (auto why = detail::check_store_url(*url)) {
        check("store.url", false, *why);
      } else {
        st.url = *url;
      }
    }
    if (postgres && has_url_file) {
      const std::string& file = *url_file;
      if (auto text = detail::read_url_file(file); !text) {
        check("store.url-file", false, text.error().message);
      } else if (auto why = detail::check_store_url(*text)) {
        check("store.url-file", false, file + ": " + *why);
      } else {
        st.url_file = file;
        st.url = std::move(*text);
      }
    }
    // One source of the URL, and only for PostgreSQL: a URL left beside type = "sqlite" would
    // make the store in use another than the one the administrator reads in this file.
    check("store.url-file", !(has_url && has_url_file),
          "store.url is set too: give the URL in one place (url-file keeps the password out of "
          "this file)");
    if (!postgres) {
      for (const auto& [key, set] :
           {std::pair{"store.url", has_url}, std::pair{"store.url-file", has_url_file}}) {
        check(key, !set,
              "store.type is \"sqlite\", which does not use it: set type = \"postgresql\", "
              "or remove it");
      }
    } else if (!has_url && !has_url_file) {
      check("store.type", false,
            "\"postgresql\" needs store.url or store.url-file (the database to connect to)");
    }
    if (auto n = get_integer("store.pool-size")) {
      if (check("store.pool-size", *n >= 1 && *n <= 256, "must be between 1 and 256")) {
        st.pool_size = static_cast<std::size_t>(*n);
      }
    }
    if (auto d = get_duration("store.acquire-timeout")) {
      if (check("store.acquire-timeout", d->count() > 0, "must be longer than 0s") &&
          check("store.acquire-timeout", d->count() <= 3600, "must be at most 1h")) {
        st.acquire_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
      }
    }
  }

  // [tlsrpt]: the TLS result collector of mailreport serve.
  void build_tlsrpt(TlsrptConfig& t) {
    if (auto v = get_string("tlsrpt.listen")) {
      // sockaddr_un.sun_path is 108 bytes on Linux, with the terminating NUL.
      if (check("tlsrpt.listen", v->empty() || v->front() == '/',
                "must be an absolute path, or \"\" for no collector") &&
          check("tlsrpt.listen", v->size() < 108, "is longer than a socket path may be (107)")) {
        t.listen = *v;
      }
    }
    if (auto m = get_mode("tlsrpt.socket-mode")) t.socket_mode = *m;
    if (auto v = get_string("tlsrpt.socket-group")) {
      if (check("tlsrpt.socket-group", v->empty() || detail::is_user_name(*v),
                "'" + *v + "' is not a group name")) {
        t.socket_group = *v;
      }
    }
    if (auto d = get_duration("tlsrpt.flush-interval")) {
      if (check("tlsrpt.flush-interval", d->count() > 0, "must be longer than 0s")) {
        t.flush_interval = *d;
      }
    }
    if (auto n = get_integer("tlsrpt.batch-size")) {
      if (check("tlsrpt.batch-size", *n > 0, "must be a positive integer") &&
          check("tlsrpt.batch-size", *n <= 1'000'000, "must be at most 1000000")) {
        t.batch_size = static_cast<std::size_t>(*n);
      }
    }
  }

  void build_dns(DnsConfig& d) {
    if (auto v = get_checked_list("dns.nameservers", detail::check_nameserver)) {
      d.nameservers = std::move(*v);
    }
    if (auto v = get_checked_list("dns.local-data", detail::check_local_data)) {
      d.local_data = std::move(*v);
    }
    if (auto v = get_checked_list("dns.local-nxdomain", [](const std::string& name) {
          return detail::is_dns_name(name)
                     ? std::nullopt
                     : std::optional<std::string>("'" + name + "' is not a DNS name");
        })) {
      d.local_nxdomain = std::move(*v);
    }
    if (auto b = get_bool("dns.local-only")) d.local_only = *b;
    if (auto t = get_duration("dns.timeout")) {
      if (check("dns.timeout", t->count() > 0, "must be longer than 0s") &&
          check("dns.timeout", t->count() <= 300,
                "must be at most 5m (an SMTP client gives up long before)")) {
        d.timeout = *t;
      }
    }
    if (auto s = get_size("dns.cache-size")) {
      if (check("dns.cache-size", *s >= 64 * 1024, "must be at least 64KB")) d.cache_size = *s;
    }
  }

  void build_milter(MilterConfig& m) {
    if (auto b = get_bool("milter.allow-non-loopback")) m.allow_non_loopback = *b;
    if (auto v = get_string("milter.socket")) {
      if (auto sock = detail::parse_milter_socket(*v); !sock.ok()) {
        check("milter.socket", false, sock.error().message);
      } else if (check("milter.socket", sock->loopback || m.allow_non_loopback,
                       // The milter protocol has no authentication: whoever connects can make
                       // us query DNS and record evaluations that end up in our reports.
                       "'" + *v +
                           "' listens beyond this host (not 127.0.0.1, [::1] or localhost); "
                           "set milter.allow-non-loopback = true to allow it")) {
        m.socket = *v;
        m.socket_path = sock->family == detail::MilterSocket::Family::Unix ? sock->path : "";
      }
    }
    if (auto mode = get_mode("milter.socket-mode")) m.socket_mode = *mode;
    for (auto [key, field] :
         {std::pair{"milter.socket-owner", &m.socket_owner},
          std::pair{"milter.socket-group", &m.socket_group}, std::pair{"milter.user", &m.user}}) {
      if (auto v = get_string(key)) {
        if (check(key, v->empty() || detail::is_user_name(*v),
                  "'" + *v + "' is not a user or group name")) {
          *field = *v;
        }
      }
    }
    if (auto t = get_duration("milter.timeout")) {
      if (check("milter.timeout", t->count() > 0, "must be longer than 0s")) m.timeout = *t;
    }
    // RFC 8601 §2.2: authserv-id is a value (token or quoted-string); we write it unquoted.
    if (auto v = get_string("milter.authserv-id")) {
      if (check("milter.authserv-id", detail::is_token(*v),
                "'" + *v + "' is not a valid authserv-id (a host or domain name, no spaces)")) {
        m.authserv_id = *v;
      }
    }
    if (auto v = get_checked_list("milter.trust-authserv-ids", [](const std::string& id) {
          return detail::is_token(id) ? std::nullopt
                                      : std::optional<std::string>(
                                            "'" + id + "' is not a valid authserv-id (no spaces)");
        })) {
      m.trust_authserv_ids.clear();
      for (std::string& id : *v) {
        for (char& ch : id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        // RFC 8601 §5: headers claiming our own authserv-id are removed as forged, so our own
        // id can never be trusted at the same time.
        if (check("milter.trust-authserv-ids", strcasecmp(id.c_str(), m.authserv_id.c_str()) != 0,
                  "'" + id +
                      "' is milter.authserv-id: Authentication-Results that claim our own id "
                      "are removed as forged, they cannot also be trusted")) {
          m.trust_authserv_ids.push_back(id);
        }
      }
    }
    if (auto v = get_checked_list("milter.trusted-networks", [](const std::string& cidr) {
          auto one = NetworkList::parse({cidr});
          return one.ok() ? std::nullopt : std::optional<std::string>(one.error().message);
        })) {
      m.trusted_networks = std::move(NetworkList::parse(*v)).value();
    }
    if (auto b = get_bool("milter.add-header")) m.add_header = *b;
    if (auto b = get_bool("milter.dmarc-enforce")) m.dmarc_enforce = *b;
    get_choice("milter.dmarc-temperror",
               std::array{std::pair{std::string_view("tempfail"), TempErrorAction::TempFail},
                          std::pair{std::string_view("accept"), TempErrorAction::Accept}},
               m.dmarc_temperror);
    get_choice("milter.dmarc-quarantine",
               std::array{std::pair{std::string_view("hold"), QuarantineAction::Hold},
                          std::pair{std::string_view("accept"), QuarantineAction::Accept}},
               m.dmarc_quarantine);
    get_choice("milter.dmarc-discovery",
               std::array{std::pair{std::string_view("treewalk"), DmarcDiscovery::TreeWalk},
                          std::pair{std::string_view("psl"), DmarcDiscovery::Psl}},
               m.dmarc_discovery);
    std::optional<std::int64_t> queue;
    if (auto n = get_integer("milter.queue-size")) {
      if (check("milter.queue-size", *n > 0, "must be a positive integer") &&
          check("milter.queue-size", *n <= 10'000'000, "must be at most 10000000")) {
        m.queue_size = static_cast<std::size_t>(*n);
        queue = *n;
      }
    }
    if (auto n = get_integer("milter.batch-size")) {
      if (check("milter.batch-size", *n > 0, "must be a positive integer") &&
          check("milter.batch-size", !queue || *n <= *queue,
                "must not be larger than milter.queue-size (" + std::to_string(queue.value_or(0)) +
                    ")")) {
        m.batch_size = static_cast<std::size_t>(*n);
      }
    }
    if (auto t = get_duration("milter.flush-interval")) {
      if (check("milter.flush-interval", t->count() > 0, "must be longer than 0s")) {
        m.flush_interval = *t;
      }
    }
  }

  // [dashboard]: the HTTP listener of mailreport serve. Whether a listener without a token
  // may start (allow-no-token) is the web module's check: the defaults have none.
  void build_dashboard(DashboardConfig& d) {
    if (auto b = get_bool("dashboard.allow-non-loopback")) d.allow_non_loopback = *b;
    bool loopback = true;
    if (auto v = get_string("dashboard.listen")) {
      if (v->empty()) {
        d.listen.clear();
      } else if (auto ep = detail::parse_endpoint(*v); !ep.ok()) {
        check("dashboard.listen", false, ep.error().message);
      } else if (!check("dashboard.listen", ep->port != 0,
                        "'" + *v + "': the port must be a number from 1 to 65535")) {
      } else if (!check("dashboard.listen",
                        ep->is_address || strcasecmp(ep->host.c_str(), "localhost") == 0,
                        "'" + *v +
                            "': the host must be an IP address (127.0.0.1:8470, [::1]:8470, "
                            "0.0.0.0:8470) or localhost, not a name that may resolve elsewhere")) {
      } else if (check("dashboard.listen", ep->loopback || d.allow_non_loopback,
                       // The dashboard shows who sends mail as our domains and where it
                       // fails; other hosts should reach it through a TLS reverse proxy.
                       "'" + *v +
                           "' is not a loopback address (127.0.0.1:PORT, [::1]:PORT, "
                           "localhost:PORT); put a TLS reverse proxy in front, or set "
                           "dashboard.allow-non-loopback = true")) {
        d.listen = *v;
        loopback = ep->loopback;
      }
    }
    const auto token = get_string("dashboard.token");
    const auto token_file = get_string("dashboard.token-file");
    const bool has_token = token && !token->empty();
    const bool has_token_file = token_file && !token_file->empty();
    // RFC 6750 §2.1: the credentials of "Authorization: Bearer" are a b64token.
    if (has_token && check("dashboard.token", detail::is_bearer_token(*token),
                           "must be letters, digits and - . _ ~ + / (and = at the end only), "
                           "as a bearer token is sent (RFC 6750 §2.1), e.g. the output of "
                           "\"openssl rand -hex 32\"")) {
      d.token = *token;
    }
    if (has_token_file) {
      const std::string& file = *token_file;
      // Read now as store.url-file is, so that check-config reports a missing or open file;
      // the web module reads it again at start and on reload (load_dashboard_token).
      if (!check("dashboard.token-file", file.front() == '/', "must be an absolute path")) {
      } else if (auto text = read_dashboard_token_file(file); !text) {
        check("dashboard.token-file", false, text.error().message);
      } else {
        d.token_file = file;
      }
    }
    check("dashboard.token-file", !(has_token && has_token_file),
          "dashboard.token is set too: give the token in one place (token-file keeps it out of "
          "this file)");
    if (auto b = get_bool("dashboard.allow-no-token")) {
      d.allow_no_token = *b;
      check("dashboard.allow-no-token",
            !d.allow_no_token || loopback || has_token || has_token_file,
            "a listen address other hosts can reach needs a token: set dashboard.token or "
            "dashboard.token-file");
    }
    if (auto n = get_integer("dashboard.max-connections")) {
      if (check("dashboard.max-connections", *n >= 1 && *n <= 10000,
                "must be between 1 and 10000")) {
        d.max_connections = static_cast<unsigned>(*n);
      }
    }
    if (auto t = get_duration("dashboard.timeout")) {
      if (check("dashboard.timeout", t->count() > 0, "must be longer than 0s")) d.timeout = *t;
    }
  }

  // A count of an alert rule: a whole number from `least` on.
  std::optional<std::uint64_t> get_count(std::string_view key, std::int64_t least,
                                         std::string_view why) {
    auto n = get_integer(key);
    if (!n) return std::nullopt;
    if (!check(key, *n >= least, std::string(why))) return std::nullopt;
    return static_cast<std::uint64_t>(*n);
  }

  // [alerts]: the warning rules.
  void build_alerts(AlertsConfig& a) {
    if (auto b = get_bool("alerts.enable")) a.enable = *b;
    if (auto d = get_duration("alerts.interval")) {
      if (check("alerts.interval", d->count() > 0, "must be longer than 0s")) a.interval = *d;
    }
    if (auto items = get_list("alerts.domains")) {
      std::vector<std::string> domains;
      bool ok = true;
      for (const Item& item : *items) {
        std::string domain = *item.text;
        for (char& ch : domain)
          ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (domain.size() > 1 && domain.back() == '.') domain.pop_back();  // FQDN form
        if (!detail::is_domain_name(domain)) {
          problem("alerts.domains", item.line, "'" + *item.text + "' is not a domain name");
          ok = false;
        } else if (std::find(domains.begin(), domains.end(), domain) == domains.end()) {
          domains.push_back(std::move(domain));
        }
      }
      if (ok) a.domains = std::move(domains);
    }
    if (auto n = get_count("alerts.dmarc-failure-count", 1, "must be a positive integer")) {
      a.dmarc_failure_count = *n;
    }
    if (auto r = get_number("alerts.dmarc-failure-rate")) {
      if (check("alerts.dmarc-failure-rate", std::isfinite(*r) && *r >= 0.0 && *r <= 1.0,
                "must be a number from 0 to 1 (0.1 = 10% of a report's messages)")) {
        a.dmarc_failure_rate = *r;
      }
    }
    if (auto n = get_count("alerts.dmarc-min-messages", 0, "must not be negative")) {
      a.dmarc_min_messages = *n;
    }
    if (auto n = get_count("alerts.dmarc-disposition-count", 0,
                           "must be 0 (off) or a positive integer")) {
      a.dmarc_disposition_count = *n;
    }
    if (auto b = get_bool("alerts.new-source")) a.new_source = *b;
    if (auto n =
            get_count("alerts.tls-failure-count", 0, "must be 0 (off) or a positive integer")) {
      a.tls_failure_count = *n;
    }
    if (auto b = get_bool("alerts.arf")) a.arf = *b;
    if (auto b = get_bool("alerts.parse-failures")) a.parse_failures = *b;
  }

  // A secret or user name: one line of text without control characters.
  std::optional<std::string> get_secret(const std::string& key) {
    auto v = get_string(key);
    if (!v) return std::nullopt;
    if (!check(key, detail::is_http_field_value(*v) && v->find('\t') == std::string::npos,
               "must be one line of text (no control characters)")) {
      return std::nullopt;
    }
    return v;
  }

  // [webhook.<id>]: Stalwart's webhook keys.
  void build_webhooks(Config& c) {
    for (const auto& [id, line] : webhook_ids_) {
      const std::string prefix = std::string(kWebhookPrefix) + id + ".";
      WebhookConfig hook;
      hook.id = id;
      bool ok = true;
      if (!is_set(prefix + "url")) {
        problem(prefix + "url", line, "missing: every webhook needs a url");
        ok = false;
      } else if (auto v = get_string(prefix + "url")) {
        if (auto why = detail::check_http_url(*v)) {
          ok = check(prefix + "url", false, *why);
        } else {
          hook.url = *v;
        }
      } else {
        ok = false;
      }
      if (auto v = get_checked_list(prefix + "events", [](const std::string& e) {
            return detail::check_event_pattern(e);
          })) {
        ok = check(prefix + "events", !v->empty(),
                   "must list at least one event or pattern (\"*\" for every event)") &&
             ok;
        hook.events = std::move(*v);
      } else {
        ok = false;
      }
      if (auto d = get_duration(prefix + "timeout")) {
        ok = check(prefix + "timeout", d->count() > 0, "must be longer than 0s") && ok;
        hook.timeout = *d;
      } else {
        ok = false;
      }
      if (auto d = get_duration_ms(prefix + "throttle")) {
        hook.throttle = *d;  // 0: no wait between two POSTs
      } else {
        ok = false;
      }
      if (auto d = get_duration(prefix + "discard-after")) {
        ok = check(prefix + "discard-after", d->count() > 0, "must be longer than 0s") && ok;
        hook.discard_after = *d;
      } else {
        ok = false;
      }
      if (auto v = get_secret(prefix + "signature-key")) {
        hook.signature_key = *v;
      } else {
        ok = false;
      }
      // [webhook.<id>.headers]: in entries_ as webhook.<id>.headers.<name>, sorted by name.
      const std::string header_prefix = prefix + "headers.";
      for (auto it = entries_.lower_bound(header_prefix);
           it != entries_.end() && it->first.starts_with(header_prefix); ++it) {
        const std::string& key = it->first;
        const std::string name = key.substr(header_prefix.size());
        auto value = get_string(key);
        if (!value) {
          ok = false;
          continue;
        }
        // RFC 9110 §5.5: no CR or LF in a field value (they would start another header).
        if (!check(key, detail::is_http_field_value(*value),
                   "must be one line of text (no CR, LF or other control characters)")) {
          ok = false;
          continue;
        }
        const auto same = [&name](const auto& h) {
          return strcasecmp(h.first.c_str(), name.c_str()) == 0;
        };
        // Header names are case-insensitive (RFC 9110 §5.1); the request's framing and its
        // body type are libcurl's and ours.
        if (!check(key, std::none_of(hook.headers.begin(), hook.headers.end(), same),
                   "is given twice (header names are case-insensitive)") ||
            !check(key,
                   strcasecmp(name.c_str(), "Content-Length") != 0 &&
                       strcasecmp(name.c_str(), "Transfer-Encoding") != 0 &&
                       strcasecmp(name.c_str(), "Content-Type") != 0 &&
                       strcasecmp(name.c_str(), "Host") != 0,
                   "'" + name + "' is set by mailreport itself")) {
          ok = false;
          continue;
        }
        hook.headers.emplace_back(name, *value);
      }
      const auto user = get_secret(prefix + "auth.username");
      const auto secret = get_secret(prefix + "auth.secret");
      if (user && secret) {
        // RFC 7617 §2: the user-id of Basic authentication cannot contain a colon.
        ok = check(prefix + "auth.username", user->find(':') == std::string::npos,
                   "must not contain ':' (RFC 7617 §2)") &&
             ok;
        if (user->empty() != secret->empty()) {
          problem(prefix + (user->empty() ? "auth.username" : "auth.secret"),
                  entry_line(prefix + (user->empty() ? "auth.secret" : "auth.username")),
                  "missing: auth needs both username and secret");
          ok = false;
        }
        hook.auth_username = *user;
        hook.auth_secret = *secret;
      } else {
        ok = false;
      }
      if (auto b = get_bool(prefix + "allow-invalid-certs")) {
        hook.allow_invalid_certs = *b;
      } else {
        ok = false;
      }
      if (ok) c.webhooks.emplace(id, std::move(hook));
    }
  }

  // --- problems -----------------------------------------------------------------------------

  void problem(std::string key, int line, std::string message) {
    Problem p{std::move(key), line, std::move(message)};
    for (const Problem& q : problems_) {
      if (q.key == p.key && q.line == p.line && q.message == p.message) return;
    }
    problems_.push_back(std::move(p));
  }

  LoadResult finish(std::shared_ptr<const Config> config) {
    // In file order; problems without a line (computed defaults) last.
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      const int la = a.line > 0 ? a.line : INT32_MAX;
      const int lb = b.line > 0 ? b.line : INT32_MAX;
      return la < lb;
    });
    LoadResult result;
    if (problems_.empty()) result.config = std::move(config);
    result.problems = std::move(problems_);
    return result;
  }

  std::filesystem::path source_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, Slot> slots_;
  std::map<std::string, int, std::less<>> signature_ids_;  // [signature.<id>] -> its line
  std::map<std::string, int, std::less<>> webhook_ids_;    // [webhook.<id>] -> its line
  std::vector<std::string> stack_;  // keys being evaluated, for cycle reports
  std::vector<Problem> problems_;
};

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

LoadResult load_string(std::string_view toml_text, const std::filesystem::path& name) {
  return Loader(name).run(toml_text);
}

LoadResult load_file(const std::filesystem::path& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  std::string text;
  if (f) {
    std::array<char, 8192> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) text.append(buf.data(), n);
  }
  if (!f || std::ferror(f.get())) {
    LoadResult result;
    result.problems.push_back(
        {"", 0, std::string("cannot read the file: ") + std::strerror(errno)});
    return result;
  }
  return load_string(text, path);
}

const char* to_string(TempErrorAction v) noexcept {
  return v == TempErrorAction::TempFail ? "tempfail" : "accept";
}
const char* to_string(QuarantineAction v) noexcept {
  return v == QuarantineAction::Hold ? "hold" : "accept";
}
const char* to_string(DmarcDiscovery v) noexcept {
  return v == DmarcDiscovery::TreeWalk ? "treewalk" : "psl";
}
const char* to_string(FailureOriginal v) noexcept {
  return v == FailureOriginal::Headers ? "headers" : "message";
}
const char* to_string(SubmitMethod v) noexcept {
  return v == SubmitMethod::Sendmail ? "sendmail" : "smtp";
}
const char* to_string(AggregateFrequency v) noexcept {
  switch (v) {
    case AggregateFrequency::Hourly: return "hourly";
    case AggregateFrequency::Daily: return "daily";
    case AggregateFrequency::Weekly: return "weekly";
    case AggregateFrequency::Never: break;
  }
  return "never";
}
std::chrono::seconds interval_length(AggregateFrequency v) noexcept {
  switch (v) {
    case AggregateFrequency::Hourly: return std::chrono::seconds(3600);
    case AggregateFrequency::Daily: return std::chrono::seconds(86400);
    case AggregateFrequency::Weekly: return std::chrono::seconds(7 * 86400);
    case AggregateFrequency::Never: break;
  }
  return std::chrono::seconds(0);
}
const char* to_string(DmarcAggregateFormat v) noexcept {
  return v == DmarcAggregateFormat::Rfc9990 ? "rfc9990" : "rfc7489";
}

std::shared_ptr<const Config> Config::defaults() {
  static const std::shared_ptr<const Config> built_in = [] {
    LoadResult r = load_string("", "");
    if (!r.config) {
      throw std::logic_error("the built-in configuration defaults do not load: " +
                             r.problems.front().describe());
    }
    return r.config;
  }();
  return built_in;
}

Result<std::string> read_dashboard_token_file(const std::filesystem::path& path) {
  auto text = detail::read_secret_file(path, "token", "the dashboard's token");
  if (!text) return text;
  if (!detail::is_bearer_token(*text)) {
    return make_error(ErrorCode::Invalid,
                      path.string() +
                          ": the token must be letters, digits and - . _ ~ + / (and = at the end "
                          "only), as a bearer token is sent (RFC 6750 §2.1)");
  }
  return text;
}

}  // namespace mailreport::config
