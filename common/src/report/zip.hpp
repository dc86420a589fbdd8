// Zip archives (PKWARE APPNOTE) read with libarchive, streamed from a ByteSource through our
// own read callback: entries are decompressed in memory and handed over as streams; nothing
// touches the file system. Every entry's output is capped (capped.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mailreport/util/bytes.hpp"
#include "report/capped.hpp"

namespace mailreport::report::detail {

struct ZipEntry {
  std::size_t number = 0;  // 1-based, in archive order
  std::string name;        // may be empty (real reporters send entries without a name)
};

// Called for each regular-file entry with a capped stream over its content. A returned
// error stops the walk and is returned.
using ZipEntryFn = std::function<Status(const ZipEntry&, ByteSource&)>;

struct ZipWalk {
  std::size_t entries = 0;  // regular-file entries handed to the callback
};

// Walks the archive. Fails with Invalid when it is not a readable zip, LimitExceeded when an
// entry passes a cap or the archive has more than max_entries entries (entries before that
// point have been handed over), or with the callback's or the source's error.
Result<ZipWalk> for_each_zip_entry(ByteSource& archive, const DecompressionCaps& caps,
                                   std::size_t max_entries, const ZipEntryFn& fn,
                                   std::vector<std::string>* notes = nullptr);

}  // namespace mailreport::report::detail
