// JSON encodings of the list-valued columns (nlohmann-json). Invalid UTF-8 in report data is
// replaced, never thrown about; unreadable column text reads back as empty.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mailreport/report/model.hpp"

namespace mailreport::store {

std::string strings_to_json(const std::vector<std::string>& v);
std::vector<std::string> strings_from_json(std::string_view text);

// [["Name","value"], ...] in order, repeats kept.
std::string fields_to_json(const std::vector<report::HeaderField>& fields);
std::vector<report::HeaderField> fields_from_json(std::string_view text);

// [{"type": ..., "comment": ...}, ...]
std::string reasons_to_json(const std::vector<report::DmarcReason>& reasons);
std::vector<report::DmarcReason> reasons_from_json(std::string_view text);

}  // namespace mailreport::store
