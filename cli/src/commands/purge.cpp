// PLACEHOLDER: replaced by the real command (do not ship).
#include "cli.hpp"

namespace mailreport::cli {

void add_purge_command(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace mailreport::cli
