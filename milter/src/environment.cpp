// Building the sessions' shared environment from the configuration, and the swap on reload
// (see environment.hpp).
#include "mailreport/milter/environment.hpp"

#include "mailreport/dns/answer_cache.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace mailreport::milter {

dns::ResolverOptions resolver_options(const config::DnsConfig& dns) {
  dns::ResolverOptions o;
  o.nameservers = dns.nameservers;
  o.local_data = dns.local_data;
  o.local_nxdomain = dns.local_nxdomain;
  o.local_only = dns.local_only;
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(dns.timeout);
  o.cache_size = static_cast<std::size_t>(dns.cache_size);
  return o;
}

namespace {

bool same_dns(const config::DnsConfig& a, const config::DnsConfig& b) {
  return a.nameservers == b.nameservers && a.local_data == b.local_data &&
         a.local_nxdomain == b.local_nxdomain && a.local_only == b.local_only &&
         a.timeout == b.timeout && a.cache_size == b.cache_size;
}

}  // namespace

Result<std::shared_ptr<const outbound::Signers>> load_dsn_signers(const config::Config& config) {
  if (config.report.dsn.sign.empty()) return std::shared_ptr<const outbound::Signers>();
  auto loaded = outbound::Signers::load(config);
  if (!loaded) return make_error(loaded.error().code, "report.dsn.sign: " + loaded.error().message);
  // The ids must name loaded keys (the config check says so too; this says it at start).
  if (auto got = loaded->get(config.report.dsn.sign); !got) {
    return make_error(got.error().code, "report.dsn.sign: " + got.error().message);
  }
  return std::make_shared<const outbound::Signers>(std::move(loaded).value());
}

Result<std::shared_ptr<const Environment>> make_environment(
    std::shared_ptr<const config::Config> config, Logger& log, const Environment* previous,
    std::shared_ptr<const outbound::Signers> signers) {
  auto env = std::make_shared<Environment>();
  env->signers = signers ? std::move(signers) : previous != nullptr ? previous->signers : nullptr;
  const auto& mc = config->milter;
  if (previous != nullptr && previous->resolver && same_dns(previous->config->dns, config->dns)) {
    env->resolver = previous->resolver;
  } else {
    auto resolver = dns::make_unbound_resolver(resolver_options(config->dns), log);
    if (!resolver) {
      return make_error(resolver.error().code, "[dns]: " + resolver.error().message);
    }
    // Answers kept in-process for their TTL: a libunbound cache hit costs two thread
    // hand-offs (dns/answer_cache.hpp).
    env->resolver = std::make_shared<dns::CachingResolver>(std::move(resolver).value());
  }
  // RFC 7208 §7.3: %{r} names the host doing the check, which the authserv-id also names.
  auto spf = auth::SpfVerifier::create(env->resolver, mc.authserv_id, log);
  if (!spf) return make_error(spf.error().code, "SPF: " + spf.error().message);
  env->spf = std::move(spf).value();
  auto dkim = auth::DkimVerifier::create(env->resolver, log);
  if (!dkim) return make_error(dkim.error().code, "DKIM: " + dkim.error().message);
  env->dkim = std::move(dkim).value();
  auth::DmarcOptions dopt;
  dopt.discovery = mc.dmarc_discovery == config::DmarcDiscovery::Psl ? auth::Discovery::Psl
                                                                     : auth::Discovery::TreeWalk;
  try {
    env->dmarc = std::make_shared<const auth::DmarcEvaluator>(env->resolver, std::move(dopt));
  } catch (const std::runtime_error& e) {
    return make_error(ErrorCode::Invalid, std::string("milter.dmarc-discovery: ") + e.what());
  }
  // Failure reports share the evaluator: the same discovery for external destination
  // verification, and the public suffix list loaded once.
  env->failures =
      std::make_shared<const auth::FailurePlanner>(env->resolver, config, nullptr, env->dmarc);
  env->config = std::move(config);
  return std::shared_ptr<const Environment>(std::move(env));
}

std::vector<std::string> restart_only_changes(const config::Config& a, const config::Config& b) {
  std::vector<std::string> out;
  const auto& x = a.milter;
  const auto& y = b.milter;
  auto differs = [&](const char* key, bool changed) {
    if (changed) out.emplace_back(key);
  };
  differs("milter.socket", x.socket != y.socket);
  differs("milter.socket-mode", x.socket_mode != y.socket_mode);
  differs("milter.socket-owner", x.socket_owner != y.socket_owner);
  differs("milter.socket-group", x.socket_group != y.socket_group);
  differs("milter.allow-non-loopback", x.allow_non_loopback != y.allow_non_loopback);
  differs("milter.user", x.user != y.user);
  differs("milter.timeout", x.timeout != y.timeout);
  differs("milter.queue-size", x.queue_size != y.queue_size);
  differs("milter.batch-size", x.batch_size != y.batch_size);
  differs("milter.flush-interval", x.flush_interval != y.flush_interval);
  differs("store.type", a.store.type != b.store.type);
  differs("store.path", a.store.path != b.store.path);
  differs("log.level", a.log.level != b.log.level);
  // The DSN signing keys are read once, before privileges are dropped.
  differs("report.dsn.sign", a.report.dsn.sign != b.report.dsn.sign);
  bool keys_changed = a.signatures.size() != b.signatures.size();
  for (const auto& [id, sig] : a.signatures) {
    auto it = b.signatures.find(id);
    keys_changed = keys_changed || it == b.signatures.end() ||
                   it->second.private_key != sig.private_key || it->second.domain != sig.domain ||
                   it->second.selector != sig.selector || it->second.algorithm != sig.algorithm ||
                   it->second.headers != sig.headers ||
                   it->second.canonicalization != sig.canonicalization;
  }
  differs("signature.*", keys_changed && !b.report.dsn.sign.empty());
  return out;
}

std::unique_ptr<Session> Sessions::create(Actions& actions, SessionOptions options) {
  return std::make_unique<Session>(environment(), actions, queue_, log_, std::move(options));
}

std::shared_ptr<const Environment> Sessions::environment() const {
  std::lock_guard lock(mu_);
  return env_;
}

void Sessions::set_environment(std::shared_ptr<const Environment> env) {
  std::lock_guard lock(mu_);
  env_ = std::move(env);
}

}  // namespace mailreport::milter
