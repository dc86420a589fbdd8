// Building the aggregate reports that are due (see aggregate_util.hpp).
#include "commands/aggregate_util.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "mailreport/dns/answer_cache.hpp"
#include "mailreport/outbound/dmarc_aggregate.hpp"
#include "mailreport/outbound/tls_aggregate.hpp"

namespace mailreport::cli {

Result<AggregateEnv> make_aggregate_env(const config::Config& config, Logger& log) {
  dns::ResolverOptions o;
  o.nameservers = config.dns.nameservers;
  o.local_data = config.dns.local_data;
  o.local_nxdomain = config.dns.local_nxdomain;
  o.local_only = config.dns.local_only;
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.dns.timeout);
  o.cache_size = static_cast<std::size_t>(config.dns.cache_size);
  auto resolver = dns::make_unbound_resolver(o, log);
  if (!resolver) return make_error(resolver.error().code, "[dns]: " + resolver.error().message);
  AggregateEnv env;
  env.resolver = std::make_shared<dns::CachingResolver>(std::move(resolver).value());
  auth::DmarcOptions dopt;
  // The same discovery as the milter's, so that alignment in our reports is what it found.
  dopt.discovery = config.milter.dmarc_discovery == config::DmarcDiscovery::Psl
                       ? auth::Discovery::Psl
                       : auth::Discovery::TreeWalk;
  try {
    env.dmarc = std::make_shared<const auth::DmarcEvaluator>(env.resolver, std::move(dopt));
  } catch (const std::runtime_error& e) {
    return make_error(ErrorCode::Invalid, std::string("milter.dmarc-discovery: ") + e.what());
  }
  outbound::HttpsPostOptions http;
  http.timeout = config.report.submit.timeout;
  env.https = outbound::make_https_poster(http);
  return env;
}

std::string describe(const char* kind, const outbound::BuildStats& stats) {
  const bool tls = std::string_view(kind) == "tls";
  return std::to_string(stats.reports) + " report" + (stats.reports == 1 ? "" : "s") + ", " +
         std::to_string(stats.deliveries) + " deliver" + (stats.deliveries == 1 ? "y" : "ies") +
         ", " + std::to_string(stats.messages) + (tls ? " session" : " message") +
         (stats.messages == 1 ? "" : "s");
}

std::vector<KindOutcome> build_due(store::Store& store,
                                   const std::shared_ptr<const config::Config>& config,
                                   const AggregateEnv& env, AggregateKinds kinds,
                                   const outbound::BuildOptions& options, Logger& log) {
  std::vector<KindOutcome> out;
  if (kinds != AggregateKinds::Tls) {
    KindOutcome k;
    k.name = "dmarc";
    k.enabled = config->report.dmarc_aggregate.send != config::AggregateFrequency::Never;
    if (k.enabled) {
      auto dmarc = env.dmarc;
      outbound::OrgDomainFn org = [dmarc](std::string_view d) {
        return dmarc->organizational_domain(d);
      };
      outbound::AggregateBuilder builder(store, outbound::make_dmarc_source(config, org, log), log);
      k.stats = builder.run(options);
    }
    out.push_back(std::move(k));
  }
  if (kinds != AggregateKinds::Dmarc) {
    KindOutcome k;
    k.name = "tls";
    k.enabled = config->report.tls_aggregate.send != config::AggregateFrequency::Never;
    if (k.enabled) {
      outbound::AggregateBuilder builder(store, outbound::make_tls_source(config, log), log);
      k.stats = builder.run(options);
    }
    out.push_back(std::move(k));
  }
  for (const KindOutcome& k : out) {
    if (!k.stats) {
      // Conflict: another builder committed the interval first; nothing is built twice.
      if (k.stats.error().code == ErrorCode::Conflict) {
        log.info("aggregate",
                 std::string(k.name) + ": another builder is at work: " + k.stats.error().message);
      } else {
        log.error("aggregate", std::string(k.name) + " reports: " + k.stats.error().message);
      }
    } else if (k.stats->reports > 0) {
      log.info("aggregate", std::string(k.name) + ": " + describe(k.name, *k.stats));
    }
  }
  return out;
}

}  // namespace mailreport::cli
