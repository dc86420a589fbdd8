// outbound/signer: DKIM signing (RFC 6376; rsa-sha256, and ed25519-sha256 per RFC 8463) with
// libopendkim, for every message mailreport sends (failure and aggregate reports) and for the
// DSNs the milter re-signs (report.dsn.sign). Keys are read once at start (before privileges
// are dropped) from signature.<id> (config), and kept in memory.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::outbound {

// One message being signed as it streams (the milter's DSN path). Not thread-safe.
class SigningSession {
 public:
  virtual ~SigningSession() = default;
  // One header field: name and value as in the message (folds kept).
  virtual Status header(std::string_view name, std::string_view value) = 0;
  virtual Status end_of_headers() = 0;
  virtual Status body(std::span<const char> chunk) = 0;  // CRLF line ends
  // The DKIM-Signature field's value (without "DKIM-Signature:"), folded.
  virtual Result<std::string> finish() = 0;
};

// One signature.<id>. Thread-safe (sign() may be called concurrently).
class DkimSigner {
 public:
  // Reads and checks the private key (its type must match `algorithm`). Errors name the id and
  // the file.
  static Result<std::shared_ptr<const DkimSigner>> load(const config::SignatureConfig& sig);
  virtual ~DkimSigner() = default;

  virtual const config::SignatureConfig& settings() const noexcept = 0;
  virtual std::unique_ptr<SigningSession> start() const = 0;
  // Signs a whole message (CRLF or LF line ends); returns the DKIM-Signature value.
  Result<std::string> sign(std::string_view message) const;
};

// Every signature.<id> of a configuration, loaded at start.
class Signers {
 public:
  static Result<Signers> load(const config::Config& config);
  // The signers for a list of ids (report.<kind>.sign); unknown ids are an error.
  Result<std::vector<std::shared_ptr<const DkimSigner>>> get(
      const std::vector<std::string>& ids) const;
  // Signs `message` with each signer of `ids` and returns the message with the DKIM-Signature
  // fields prepended (in the order of ids).
  Result<std::string> sign(const std::vector<std::string>& ids, std::string_view message) const;

 private:
  std::map<std::string, std::shared_ptr<const DkimSigner>, std::less<>> by_id_;
};

}  // namespace mailreport::outbound
