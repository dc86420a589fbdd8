// milter/environment: builds what the sessions share from a configuration (the resolver from
// [dns], the SPF and DKIM verifiers, the DMARC evaluator with milter.dmarc-discovery, the
// failure-report planner, the DSN signing keys), and hands new sessions the current one. A reload
// builds a new Environment and swaps it in; sessions that are running keep theirs (shared_ptr).
#pragma once

#include <memory>
#include <mutex>

#include "mailreport/config/config.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/milter/libmilter.hpp"
#include "mailreport/milter/session.hpp"
#include "mailreport/milter/writer.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::milter {

// [dns] as the resolver wants it.
dns::ResolverOptions resolver_options(const config::DnsConfig& dns);

// Builds the resolver and the verifiers. With `previous` whose [dns] is the same, its resolver
// (and its warm cache) is kept. Errors name what failed (a nameserver unbound refuses, a
// local-data line, no public suffix list for dmarc-discovery = "psl").
// `signers`: the report.dsn.sign keys loaded at start (load_dsn_signers); null takes
// `previous`'s (keys are not read again after privileges are dropped).
Result<std::shared_ptr<const Environment>> make_environment(
    std::shared_ptr<const config::Config> config, Logger& log,
    const Environment* previous = nullptr,
    std::shared_ptr<const outbound::Signers> signers = nullptr);

// The signing keys of report.dsn.sign (every signature.<id>), read now: call before dropping
// privileges. Null when report.dsn.sign is empty. Errors name the key and its file.
Result<std::shared_ptr<const outbound::Signers>> load_dsn_signers(const config::Config& config);

// The configuration keys whose change only a restart applies (the socket, the user, the
// queue, the store); their names, for a reload's warning.
std::vector<std::string> restart_only_changes(const config::Config& running,
                                              const config::Config& loaded);

// Makes each new session with the current environment.
class Sessions final : public SessionFactory {
 public:
  // `queue` and `log` must outlive every session.
  Sessions(std::shared_ptr<const Environment> env, EvaluationQueue& queue, Logger& log)
      : env_(std::move(env)), queue_(queue), log_(log) {}

  std::unique_ptr<Session> create(Actions& actions, SessionOptions options) override;

  std::shared_ptr<const Environment> environment() const;
  void set_environment(std::shared_ptr<const Environment> env);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Environment> env_;
  EvaluationQueue& queue_;
  Logger& log_;
};

}  // namespace mailreport::milter
