#pragma once
// Text and JSON renderings of keys and values for programs that print what a
// cluster returned (tobctl's commands, benchmarks, test harnesses). Values are
// arbitrary bytes: printable UTF-8 is shown as text, anything else as hex.

#include <optional>
#include <string>
#include <string_view>

#include "consensus/types.h"

namespace tob::client {

using consensus::Bytes;

/// A JSON string literal (quotes included) of UTF-8 text; invalid UTF-8 is
/// replaced by U+FFFD.
std::string json_string(std::string_view text);
/// True iff `bytes` is valid UTF-8 without control characters other than \t \n \r.
bool printable_text(const Bytes& bytes);
/// Bytes as text when printable_text, else "0x" + hex.
std::string display_bytes(const Bytes& bytes);
/// JSON for an optional value: null, a string (printable text) or {"hex": "..."}.
std::string json_value(const std::optional<Bytes>& value);

}  // namespace tob::client
