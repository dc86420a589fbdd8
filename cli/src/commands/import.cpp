// mailreport import PATH...: stores the reports found in files and mail folders, through the
// same ingest path as the LMTP receiver (raw message kept, reports de-duplicated).
//   - a file: one message (or bare XML/JSON, .gz, .zip);
//   - an mbox file (starts with "From ", RFC 4155): each message separately (GMime's mbox mode);
//   - a folder: every file in it, recursively; in a Maildir only cur/ and new/ are read (tmp/
//     holds deliveries in progress, the rest is index files). Symbolic links are followed,
//     but each folder is read once, and the store's own files are skipped.
// Prints "imported N, duplicate N, failed N (unparsed, kept raw)", and one line per failure
// on stderr. Exit 0 unless something could not be stored (1), or 65 when no input held any
// report.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"
#include "commands/mbox_util.hpp"
#include "commands/store_util.hpp"
#include "mailreport/ingest/store_ingestor.hpp"

namespace mailreport::cli {

namespace {

namespace fs = std::filesystem;

struct Counts {
  std::size_t imported = 0;   // messages with at least one new report
  std::size_t duplicate = 0;  // messages whose reports were all stored already
  std::size_t failed = 0;     // messages without a report (kept raw)
  std::size_t not_stored = 0;
  std::size_t reports = 0;
};

class Importer {
 public:
  Importer(ingest::StoreIngestor& ingestor, fs::path temp_dir, const fs::path& store_path)
      : ingestor_(ingestor), temp_dir_(std::move(temp_dir)) {
    // The store's own files, should a folder being imported hold them (SQLite's names).
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ec;
      fs::path p = fs::weakly_canonical(store_path.string() + suffix, ec);
      if (!ec) store_files_.insert(p);
    }
  }

  void import_path(const fs::path& path) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      not_stored(path.string(), path.string() + ": no such file or directory");
      return;
    }
    if (fs::is_directory(status)) {
      import_dir(path);
    } else {
      import_file(path);
    }
  }

  const Counts& counts() const noexcept { return counts_; }

 private:
  static bool is_maildir(const fs::path& dir) {
    std::error_code ec;
    return fs::is_directory(dir / "cur", ec) && fs::is_directory(dir / "new", ec);
  }

  void import_dir(const fs::path& dir) {
    // A symbolic link back to a folder being read would make the walk go round until the path
    // is too long, storing every unparsed message again each time: read each folder once.
    std::error_code cec;
    fs::path real = fs::canonical(dir, cec);
    if (!cec && !visited_.insert(real).second) {
      std::cerr << "mailreport import: " << dir.string() << ": skipped, the folder "
                << real.string() << " was read already\n";
      return;
    }
    const bool maildir = is_maildir(dir);
    std::vector<fs::path> entries;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      entries.push_back(it->path());
    }
    if (ec) {
      not_stored(dir.string(), dir.string() + ": " + ec.message());
      return;
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) {
      std::string name = e.filename().string();
      std::error_code sec;
      if (fs::is_directory(e, sec)) {
        // Maildir: tmp/ holds deliveries in progress; Maildir++ sub-folders start with '.'.
        if (maildir && name == "tmp") continue;
        if (!maildir && !name.empty() && name[0] == '.') continue;
        import_dir(e);
      } else if (fs::is_regular_file(e, sec)) {
        if (maildir) continue;  // index and state files (dovecot-uidlist, maildirfolder, ...)
        if (!name.empty() && name[0] == '.') continue;
        import_file(e);
      }
    }
  }

  void import_file(const fs::path& path) {
    std::error_code cec;
    if (fs::path real = fs::weakly_canonical(path, cec); !cec && store_files_.count(real) > 0) {
      std::cerr << "mailreport import: " << path.string() << ": skipped, this is the store\n";
      return;
    }
    auto input = Input::from_file(path);
    if (!input) {
      not_stored(path.string(), input.error().message);
      return;
    }
    if (!looks_like_mbox(*input)) {
      ingest_one(path.string(), *input);
      return;
    }
    auto ranges = split_mbox(path);
    if (!ranges) {  // not really an mbox: take the file as one message
      ingest_one(path.string(), *input);
      return;
    }
    for (std::size_t i = 0; i < ranges->size(); ++i) {
      std::string name = path.string() + "#" + std::to_string(i + 1);
      auto slice = slice_file(path, (*ranges)[i], name, temp_dir_);
      if (!slice) {
        not_stored(name, slice.error().message);
        continue;
      }
      ingest_one(name, *slice);
    }
  }

  void ingest_one(const std::string& name, const Input& input) {
    ingest::Envelope env;
    env.source = "import";
    env.client = name;
    auto out = ingestor_.ingest(env, input);
    if (!out) {
      not_stored(name, out.error().describe());
      return;
    }
    counts_.reports += out->reports_stored;
    if (out->reports_stored > 0) {
      ++counts_.imported;
    } else if (out->duplicates > 0) {
      ++counts_.duplicate;
    } else {
      ++counts_.failed;
      std::cerr << "mailreport import: " << name << ": not parsed (kept raw as message "
                << out->message_id << "): " << out->parse_error.value_or("no report") << "\n";
    }
  }

  void not_stored(const std::string& name, const std::string& why) {
    ++counts_.not_stored;
    std::cerr << "mailreport import: " << name << ": NOT STORED: " << why << "\n";
  }

  ingest::StoreIngestor& ingestor_;
  fs::path temp_dir_;
  Counts counts_;
  std::set<fs::path> visited_;      // folders read, by canonical path
  std::set<fs::path> store_files_;  // never imported into themselves
};

int run_import(const Context& ctx, const std::vector<std::string>& paths) {
  auto cfg = ctx.load_config();
  auto store = open_configured_store(*cfg, StoreAccess::ReadWrite);
  if (!store) return fail("import", store.error());
  NullLogger log;  // outcomes are printed here, per message
  ingest::IngestOptions options;
  options.limits = extract_limits(*cfg);
  options.temp_dir = cfg->store.path.parent_path();
  options.suppress_after = cfg->report.suppress_after;
  ingest::StoreIngestor ingestor(**store, log, options);
  fs::path temp_dir = cfg->store.path.has_parent_path() ? cfg->store.path.parent_path() : ".";
  Importer importer(ingestor, temp_dir, cfg->store.path);
  for (const auto& p : paths) importer.import_path(p);
  const auto& c = importer.counts();
  std::cout << "imported " << c.imported << ", duplicate " << c.duplicate << ", failed " << c.failed
            << " (unparsed, kept raw)";
  if (c.not_stored > 0) std::cout << ", not stored " << c.not_stored;
  std::cout << "; " << c.reports << " new report(s)\n";
  if (c.not_stored > 0) return kExitFailure;
  if (c.imported == 0 && c.duplicate == 0) return kExitDataErr;
  return kExitOk;
}

}  // namespace

void add_import_command(CLI::App& app, Context& ctx) {
  auto* cmd =
      app.add_subcommand("import", "store the reports in files, folders, mbox files and Maildirs");
  cmd->add_option("-c,--config", ctx.config_path, "configuration file");
  auto paths = std::make_shared<std::vector<std::string>>();
  cmd->add_option("paths", *paths, "files, folders, mbox files or Maildirs")->required();
  cmd->callback([&ctx, paths] { ctx.exit_code = run_import(ctx, *paths); });
}

}  // namespace mailreport::cli
