// Configuration: one TOML file (toml++), parsed once into an immutable Config. Keys follow
// Stalwart where Stalwart has them (report.domain, report.submitter, report.analysis.*);
// every key, its default and its meaning are documented in conf/mailreport.toml.
//
// Values may be Stalwart-style expressions: 'single-quoted literal', `+` concatenation and
// config_get('other.key'), e.g.  from-address = "'noreply-dmarc@' + config_get('report.domain')".
// Plain TOML values are taken as they are.
#pragma once

#include <sys/types.h>

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

struct ReportConfig {
  std::string domain;     // report.domain: default the domain part of the hostname
  std::string submitter;  // report.submitter: default the hostname
  AddressPatterns analysis_addresses;  // report.analysis.addresses
  std::chrono::seconds analysis_retention{30 * 24 * 3600};  // report.analysis.store ("30d")
};

struct StoreConfig {
  std::string type = "sqlite";  // store.type: sqlite (postgresql comes later)
  std::filesystem::path path = "/var/lib/mailreport/mailreport.db";  // store.path
};

struct LmtpConfig {
  std::string hostname;  // lmtp.hostname: greeting name, default report.submitter
  std::filesystem::path unix_socket = "/run/mailreport/lmtp.sock";  // lmtp.unix-socket; "" = off
  mode_t unix_socket_mode = 0660;  // lmtp.unix-socket-mode ("0660")
  std::string unix_socket_owner;   // lmtp.unix-socket-owner (user name; "" = keep)
  std::string unix_socket_group;   // lmtp.unix-socket-group
  std::string tcp;                 // lmtp.tcp: "127.0.0.1:2424" / "[::1]:2424"; "" = off
  bool allow_non_loopback = false;  // lmtp.allow-non-loopback: let lmtp.tcp be a non-loopback
                                    // address (LMTP has no authentication)
  unsigned max_connections = 32;   // lmtp.max-connections
  std::chrono::seconds idle_timeout{300};     // lmtp.idle-timeout: between commands
  std::chrono::seconds data_timeout{600};     // lmtp.data-timeout: whole DATA phase
  std::filesystem::path spool_dir;  // lmtp.spool-dir: large messages spill here (default: the
                                    // store's directory)
  std::string user;  // lmtp.user: drop privileges to this user after binding ("" = stay)
};

struct LimitsConfig {
  std::uint64_t message_size = 50ull << 20;         // limits.message-size ("50MB")
  std::uint64_t decompressed_size = 256ull << 20;   // limits.decompressed-size ("256MB")
  double compression_ratio = 200.0;                 // limits.compression-ratio
  std::size_t line_length = 65536;                  // limits.line-length (bytes, DATA lines)
  std::size_t command_line_length = 4096;           // limits.command-line-length
};

struct LogConfig {
  LogLevel level = LogLevel::Info;  // log.level: debug | info | warning | error
};

struct Problem {
  std::string key;   // dotted key, e.g. "lmtp.max-connections"
  int line = 0;      // 1-based line in the file, 0 when not applicable
  std::string message;
  std::string describe() const;  // "FILE:LINE: key: message"-style text without the file
};

class Config {
 public:
  ReportConfig report;
  StoreConfig store;
  LmtpConfig lmtp;
  LimitsConfig limits;
  LogConfig log;
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
