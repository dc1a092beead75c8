#include "config/reader.hpp"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "core/error.hpp"

namespace ds::config {

void line_column(std::string_view text, size_t offset, size_t* line, size_t* column) {
    size_t l = 1, line_start = 0;
    for (size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++l;
            line_start = i + 1;
        }
    }
    *line = l;
    *column = offset - line_start + 1;
}

namespace {

[[noreturn]] void syntax_error(std::string_view text, size_t offset, const std::string& what) {
    size_t line = 0, column = 0;
    line_column(text, offset, &line, &column);
    fail(DS_ERR_CONFIG_PARSE, "line %zu column %zu: %s", line, column, what.c_str());
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The text of the line holding offset, trimmed, for "near ..." in syntax errors.
std::string snippet(std::string_view text, size_t offset) {
    if (offset >= text.size()) return "";
    size_t end = offset;
    while (end < text.size() && text[end] != '\n' && end - offset < 24) ++end;
    std::string s(text.substr(offset, end - offset));
    while (!s.empty() && is_space(s.back())) s.pop_back();
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return s;
}

}  // namespace

std::string strip_hjson(std::string_view text) {
    std::string out(text);
    int depth = 0;
    size_t pending_comma = std::string::npos;  // a ',' that is trailing if a '}' or ']' comes next
    char last_token = 0;                       // the last significant character outside comments
    size_t i = 0;
    const size_t n = text.size();
    while (i < n) {
        const char c = text[i];
        if (c == '\0') syntax_error(text, i, "NUL byte in the config text");
        if (c == '"') {
            const size_t open = i++;
            bool closed = false;
            while (i < n) {
                if (text[i] == '\0') syntax_error(text, i, "NUL byte in the config text");
                if (text[i] == '\\') {
                    if (i + 1 < n && text[i + 1] == '\0') syntax_error(text, i + 1, "NUL byte in the config text");
                    i += 2;
                    continue;
                }
                if (text[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                }
                ++i;
            }
            if (!closed) syntax_error(text, open, "unterminated string");
            pending_comma = std::string::npos;
            last_token = '"';
            continue;
        }
        if (c == '#' || (c == '/' && i + 1 < n && text[i + 1] == '/')) {
            while (i < n && text[i] != '\n') out[i++] = ' ';
            continue;
        }
        if (c == '/' && i + 1 < n && text[i + 1] == '*') {
            const size_t open = i;
            out[i] = out[i + 1] = ' ';
            i += 2;
            bool closed = false;
            while (i < n) {
                if (text[i] == '*' && i + 1 < n && text[i + 1] == '/') {
                    out[i] = out[i + 1] = ' ';
                    i += 2;
                    closed = true;
                    break;
                }
                if (text[i] != '\n') out[i] = ' ';
                ++i;
            }
            if (!closed) syntax_error(text, open, "unterminated /* comment");
            continue;
        }
        if (is_space(c)) {
            ++i;
            continue;
        }
        switch (c) {
            case '{':
            case '[':
                if (++depth > kMaxDepth)
                    syntax_error(text, i, format("objects and arrays are nested deeper than %d levels", kMaxDepth));
                pending_comma = std::string::npos;
                break;
            case '}':
            case ']':
                --depth;
                if (pending_comma != std::string::npos) out[pending_comma] = ' ';
                pending_comma = std::string::npos;
                break;
            case ',':
                // Only a comma after a value can be trailing; ",," and "[," stay for cJSON to reject.
                pending_comma = (last_token == ',' || last_token == '[' || last_token == '{' || last_token == 0)
                                    ? std::string::npos
                                    : i;
                break;
            default: pending_comma = std::string::npos; break;
        }
        last_token = c;
        ++i;
    }
    return out;
}

namespace {

struct CjsonDeleter {
    void operator()(cJSON* p) const { cJSON_Delete(p); }
};

std::string describe_syntax_error(std::string_view text, size_t offset) {
    // cJSON reports where it stopped; point at the first significant character from there.
    while (offset < text.size() && is_space(text[offset])) ++offset;
    if (offset >= text.size()) return "unexpected end of the text (an object, array or string is not closed)";
    return "syntax error near '" + snippet(text, offset) + "'";
}

Value convert(const cJSON* item, const std::string& path, Report& report) {
    if (cJSON_IsObject(item)) {
        Value obj = Value::object();
        std::unordered_set<std::string> seen;
        std::unordered_set<std::string> reported;
        for (const cJSON* child = item->child; child; child = child->next) {
            std::string key = child->string ? child->string : "";
            std::string child_path = join_path(path, key);
            if (!seen.insert(key).second) {
                if (reported.insert(key).second)
                    report.error(DS_ERR_CONFIG_PARSE, child_path,
                                 "duplicate key (given more than once; DeepSpeed rejects duplicate keys)");
                continue;
            }
            obj.append(key, convert(child, child_path, report));
        }
        return obj;
    }
    if (cJSON_IsArray(item)) {
        Value arr = Value::array();
        size_t index = 0;
        for (const cJSON* child = item->child; child; child = child->next, ++index)
            arr.push(convert(child, path + "[" + std::to_string(index) + "]", report));
        return arr;
    }
    if (cJSON_IsString(item)) return Value::string(item->valuestring ? item->valuestring : "");
    if (cJSON_IsNumber(item)) {
        if (!std::isfinite(item->valuedouble)) {
            report.error(DS_ERR_CONFIG_VALUE, path, "number is too large for a double (must be finite)");
            return Value::null();
        }
        return Value::number(item->valuedouble);
    }
    if (cJSON_IsBool(item)) return Value::boolean(cJSON_IsTrue(item));
    return Value::null();
}

}  // namespace

Value read_json(std::string_view text, Report& report) {
    size_t start = 0;
    if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF && static_cast<unsigned char>(text[1]) == 0xBB &&
        static_cast<unsigned char>(text[2]) == 0xBF)
        start = 3;  // UTF-8 byte order mark
    const std::string clean = strip_hjson(text.substr(start));
    std::string_view body = text.substr(start);
    size_t first = 0;
    while (first < clean.size() && is_space(clean[first])) ++first;
    if (first == clean.size()) syntax_error(body, 0, "the config is empty (expected a JSON object)");

    const char* end = nullptr;
    std::unique_ptr<cJSON, CjsonDeleter> tree;
    {
        // cJSON records every parse's error position in a process-global struct (which dsabi never
        // reads); serialising the calls keeps concurrent ds_config_parse calls free of data races.
        static std::mutex cjson_mutex;
        std::lock_guard<std::mutex> lock(cjson_mutex);
        tree.reset(cJSON_ParseWithOpts(clean.c_str(), &end, 1));
    }
    if (!tree) {
        size_t offset = end && end >= clean.c_str() ? static_cast<size_t>(end - clean.c_str()) : 0;
        if (offset > clean.size()) offset = clean.size();
        // Report against the cleaned text, so that a comment is never quoted as the culprit.
        syntax_error(body, offset, describe_syntax_error(clean, offset));
    }
    if (!cJSON_IsObject(tree.get())) {
        syntax_error(body, first, std::string("the config must be a JSON object, not ") +
                                      (cJSON_IsArray(tree.get())    ? "an array"
                                       : cJSON_IsString(tree.get()) ? "a string"
                                       : cJSON_IsNumber(tree.get()) ? "a number"
                                       : cJSON_IsNull(tree.get())   ? "null"
                                                                    : "a boolean"));
    }
    return convert(tree.get(), "", report);
}

}  // namespace ds::config
