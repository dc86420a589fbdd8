// mailreport parse FILE...: finds the reports in each file — bare XML/JSON, .gz, .zip, or a
// message in any MIME layout (report/extract.hpp) — and prints one JSON line per file:
//   {"file": PATH, "reports": [REPORT...], "error": null | "reason"}
// where REPORT is report::to_json (with its "type"). Nothing is stored. "-" reads standard
// input. Exit 0 when every file held at least one report, 65 (EX_DATAERR) otherwise, with the
// reasons on stderr too. Limits come from the configuration: limits.decompressed-size and
// limits.compression-ratio (limits.message-size for standard input).
#include <unistd.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "mailreport/report/extract.hpp"
#include "mailreport/report/json.hpp"
#include "mailreport/report/sink.hpp"
#include "mailreport/util/bytes.hpp"

namespace mailreport::cli {

namespace {

Result<Input> open_input(const std::string& file, const config::Config& cfg) {
  if (file == "-") {
    FdSource in(UniqueFd(::dup(STDIN_FILENO)));
    auto data = read_all(in, cfg.limits.message_size);
    if (!data) return std::move(data).error();
    return Input::from_memory(std::move(*data), "<stdin>");
  }
  return Input::from_file(file);
}

// Parses one file; returns true when it held at least one report.
std::string dump(const nlohmann::json& j) {
  // Reports carry text as sent (e.g. windows-1252 in ARF text parts): replace invalid UTF-8
  // instead of failing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Parses one file and prints its line; returns true when it held at least one report.
bool parse_one(const std::string& file, const config::Config& cfg,
               const report::ExtractLimits& limits) {
  std::string reports;
  std::string error;
  try {
    auto input = open_input(file, cfg);
    if (!input) {
      error = input.error().describe();
    } else {
      report::CollectingSink sink;
      auto outcome = report::extract_reports(*input, sink, limits);
      for (const auto& r : sink.reports()) {
        reports += (reports.empty() ? "" : ",") + dump(report::to_json(r));
      }
      if (!outcome) error = outcome.error().describe();
    }
  } catch (const std::exception& e) {
    error = std::string("internal error: ") + e.what();
  }
  // Keys in the documented order: file, reports, error.
  std::cout << "{\"file\":" << dump(file) << ",\"reports\":[" << reports
            << "],\"error\":" << (error.empty() ? "null" : dump(error)) << "}" << std::endl;
  if (!error.empty()) std::cerr << "mailreport parse: " << file << ": " << error << "\n";
  return error.empty();
}

int parse_files(const Context& ctx, const std::vector<std::string>& files) {
  auto cfg = ctx.load_config();
  report::ExtractLimits limits;
  limits.max_decompressed_bytes = cfg->limits.decompressed_size;
  limits.max_compression_ratio = cfg->limits.compression_ratio;
  bool all_ok = true;
  for (const auto& f : files) all_ok = parse_one(f, *cfg, limits) && all_ok;
  return all_ok ? kExitOk : kExitDataErr;
}

}  // namespace

void add_parse_command(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "parse", "find and parse the reports in files (XML, JSON, .gz, .zip, messages); print JSON");
  cmd->add_option("-c,--config", ctx.config_path,
                  std::string("configuration file (default ") + kDefaultConfigPath +
                      " if present, else the built-in defaults)");
  auto files = std::make_shared<std::vector<std::string>>();
  cmd->add_option("files", *files, "files to parse (\"-\" for standard input)")->required();
  cmd->callback([&ctx, files] { ctx.exit_code = parse_files(ctx, *files); });
}

}  // namespace mailreport::cli
