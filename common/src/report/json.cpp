#include "mailreport/report/json.hpp"

namespace mailreport::report {

nlohmann::json to_json(const Report& report) {
  nlohmann::json j = std::visit([](const auto& r) { return to_json(r); }, report);
  j["type"] = to_string(type_of(report));
  return j;
}

}  // namespace mailreport::report
