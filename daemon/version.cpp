#include "daemon/version.h"

namespace tob::daemon {

const char* version() { return "0.1.0"; }

}  // namespace tob::daemon
