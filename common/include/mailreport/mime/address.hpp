// Address lists (RFC 5322 §3.4 mailbox-list / address-list) as found in From, Sender, To:
// only what DMARC needs, the domain part of each mailbox. Parsing is GMime's
// (internet_address_list_parse), which also takes the obsolete forms of RFC 5322 §4.4 and
// RFC 2047 encoded display names; this module only adapts it.
// Not done: anything about local-parts or display names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailreport::mime {

// The domain of every mailbox in a header value, in order (members of a group included),
// lower-cased, in A-label form (RFC 5890 §2.3.2.1: U-labels are converted by GMime's IDN
// support), without a trailing dot. Mailboxes without a domain part (a bare local-part, an
// address GMime cannot parse) are skipped, so the result may be empty. Duplicates are kept.
std::vector<std::string> address_domains(std::string_view header_value);

}  // namespace mailreport::mime
