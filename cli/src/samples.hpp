// The sample reports bundled into the binary for `mailreport demo` (samples/reports/*.eml,
// written for this project; see samples/make-samples.py).
#pragma once

#include <string_view>
#include <vector>

namespace mailreport::cli {

struct Sample {
  std::string_view name;
  std::string_view message;
};

const std::vector<Sample>& bundled_samples();

}  // namespace mailreport::cli
