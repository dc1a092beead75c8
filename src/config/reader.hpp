// Reading config text: DeepSpeed reads its JSON with hjson, so comments (//, # and /* */) and
// trailing commas are accepted. A small preprocessor blanks them out (keeping every byte offset,
// so positions map back to the original line and column), then cJSON parses the result, and the
// cJSON tree is converted to a Value tree while duplicate keys and non-finite numbers are found.
#pragma once

#include <string>
#include <string_view>

#include "config/report.hpp"
#include "config/value.hpp"

namespace ds::config {

// Deepest nesting of objects and arrays accepted (DeepSpeed configs use about 5).
inline constexpr int kMaxDepth = 64;

// Blank out comments and trailing commas. Throws DS_ERR_CONFIG_PARSE ("line L column C: ...") for
// NUL bytes, unterminated comments or strings, and nesting deeper than kMaxDepth.
std::string strip_hjson(std::string_view text);

// Parse text into a tree. Syntax errors throw DS_ERR_CONFIG_PARSE with the line and column;
// duplicate keys (DS_ERR_CONFIG_PARSE) and numbers that overflow a double (DS_ERR_CONFIG_VALUE) are
// added to report, all of them, and the returned tree is then not to be used.
Value read_json(std::string_view text, Report& report);

// 1-based line and column of a byte offset.
void line_column(std::string_view text, size_t offset, size_t* line, size_t* column);

}  // namespace ds::config
