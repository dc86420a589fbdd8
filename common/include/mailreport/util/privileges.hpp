// Dropping root after start-up, the Postfix way: the daemon opens its sockets, files and keys
// first, then calls drop_privileges(), which does setgid + initgroups + setuid and refuses to
// go on with any root identity left (design.md, "Safety rules").
#pragma once

#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport {

// Switches to `user`. `key` names the setting in messages ("lmtp.user"), `who` the program
// ("the receiver"). Succeeds at once when the process already runs as that user; fails when it
// runs as another unprivileged user (it cannot switch), when `user` is unknown or is root, or
// when any root identity is left afterwards.
Status drop_privileges(const std::string& user, std::string_view key, std::string_view who);

// Gives `path` (a daemon's unix socket) the named owner and/or group ("" keeps that one); the
// names are looked up in the user and group databases. A name that does not exist fails with
// Invalid, naming `owner_key` / `group_key` (e.g. "lmtp.unix-socket-owner"). Needs root.
Status chown_by_name(const std::string& path, const std::string& owner, const std::string& group,
                     std::string_view owner_key, std::string_view group_key);

}  // namespace mailreport
