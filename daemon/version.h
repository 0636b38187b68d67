#pragma once

namespace tob::daemon {

/// The tobd release version (also the Debian package version).
const char* version();

}  // namespace tob::daemon
