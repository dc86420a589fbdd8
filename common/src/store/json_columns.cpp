// JSON encodings of list-valued store columns (see json_columns.hpp).
#include "store/json_columns.hpp"

#include <nlohmann/json.hpp>

namespace mailreport::store {

namespace {
using nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json parse(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json::array() : j;
}

std::string str(const json& j) {
  return j.is_string() ? j.get<std::string>() : std::string();
}
}  // namespace

std::string strings_to_json(const std::vector<std::string>& v) {
  return dump(json(v));
}

std::vector<std::string> strings_from_json(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& e : parse(text)) out.push_back(str(e));
  return out;
}

std::string fields_to_json(const std::vector<report::HeaderField>& fields) {
  json j = json::array();
  for (const auto& f : fields) j.push_back(json::array({f.name, f.value}));
  return dump(j);
}

std::vector<report::HeaderField> fields_from_json(std::string_view text) {
  std::vector<report::HeaderField> out;
  for (const auto& e : parse(text)) {
    if (e.is_array() && e.size() == 2) out.push_back({str(e[0]), str(e[1])});
  }
  return out;
}

std::string reasons_to_json(const std::vector<report::DmarcReason>& reasons) {
  json j = json::array();
  for (const auto& r : reasons) j.push_back(json{{"type", r.type}, {"comment", r.comment}});
  return dump(j);
}

std::vector<report::DmarcReason> reasons_from_json(std::string_view text) {
  std::vector<report::DmarcReason> out;
  for (const auto& e : parse(text)) {
    if (e.is_object())
      out.push_back({str(e.value("type", json())), str(e.value("comment", json()))});
  }
  return out;
}

}  // namespace mailreport::store
