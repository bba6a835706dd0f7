#pragma once
// Internal: the value of an HTTP Basic Authorization header, "Basic " + base64(user ":" password)
// (RFC 7617), as the REST trackers send it (MLflow's username/password, W&B's "api:<key>").
// The result is a credential: it never goes into a message, a log or a file.
// Thread-safety: a pure function.
#include <string>
#include <string_view>

namespace accel::detail {

std::string basic_authorization(std::string_view user, std::string_view password);

}  // namespace accel::detail
