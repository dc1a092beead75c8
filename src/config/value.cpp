#include "config/value.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace ds::config {

Value Value::boolean(bool b) {
    Value v;
    v.kind_ = Kind::Bool;
    v.bool_ = b;
    return v;
}

Value Value::integer(int64_t i) {
    Value v;
    v.kind_ = Kind::Number;
    v.is_int_ = true;
    v.int_ = i;
    v.num_ = static_cast<double>(i);
    return v;
}

Value Value::real(double d) {
    Value v;
    v.kind_ = Kind::Number;
    v.num_ = d;
    return v;
}

Value Value::number(double d) {
    // 2^63 is exactly representable; anything in (-2^63, 2^63) that is integral fits in int64.
    constexpr double kTwo63 = 9223372036854775808.0;
    if (std::isfinite(d) && std::floor(d) == d && d > -kTwo63 && d < kTwo63) return integer(static_cast<int64_t>(d));
    return real(d);
}

Value Value::string(std::string s) {
    Value v;
    v.kind_ = Kind::String;
    v.str_ = std::move(s);
    return v;
}

Value Value::array() {
    Value v;
    v.kind_ = Kind::Array;
    return v;
}

Value Value::object() {
    Value v;
    v.kind_ = Kind::Object;
    return v;
}

const Value* Value::find(const std::string& key) const {
    for (const Member& m : members_)
        if (m.key == key) return &m.value;
    return nullptr;
}

Value* Value::find(const std::string& key) {
    for (Member& m : members_)
        if (m.key == key) return &m.value;
    return nullptr;
}

void Value::set(const std::string& key, Value v) {
    if (Value* existing = find(key)) {
        *existing = std::move(v);
        return;
    }
    members_.push_back(Member{key, std::move(v)});
}

void Value::append(std::string key, Value v) { members_.push_back(Member{std::move(key), std::move(v)}); }

bool Value::erase(const std::string& key) {
    for (auto it = members_.begin(); it != members_.end(); ++it) {
        if (it->key == key) {
            members_.erase(it);
            return true;
        }
    }
    return false;
}

bool Value::operator==(const Value& o) const {
    if (kind_ != o.kind_) return false;
    switch (kind_) {
        case Kind::Null: return true;
        case Kind::Bool: return bool_ == o.bool_;
        case Kind::Number:
            if (is_int_ && o.is_int_) return int_ == o.int_;
            return as_double() == o.as_double();
        case Kind::String: return str_ == o.str_;
        case Kind::Array: return items_ == o.items_;
        case Kind::Object:
            if (members_.size() != o.members_.size()) return false;
            for (size_t i = 0; i < members_.size(); ++i)
                if (members_[i].key != o.members_[i].key || members_[i].value != o.members_[i].value) return false;
            return true;
    }
    return false;
}

// ---- serialisation ----------------------------------------------------------------------------

std::string format_double(double d, bool force_decimal) {
    if (!std::isfinite(d)) return "null";  // never stored: the parser rejects non-finite numbers
    char buf[40];
    for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    std::string s = buf;
    if (force_decimal && s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
}

namespace {

void append_escaped(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char esc[8];
                    std::snprintf(esc, sizeof esc, "\\u%04x", c);
                    out += esc;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

bool is_scalar(const Value& v) { return !v.is_array() && !v.is_object(); }

void write(std::string& out, const Value& v, int indent, int depth) {
    const bool pretty = indent >= 0;
    auto newline = [&](int level) {
        out += '\n';
        out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
    };
    switch (v.kind()) {
        case Value::Kind::Null: out += "null"; return;
        case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Value::Kind::Number:
            if (v.is_integer()) {
                out += std::to_string(v.as_int());
            } else {
                out += format_double(v.as_double(), true);
            }
            return;
        case Value::Kind::String: append_escaped(out, v.as_string()); return;
        case Value::Kind::Array: {
            if (v.items().empty()) {
                out += "[]";
                return;
            }
            bool inline_items = !pretty;
            if (pretty) {
                inline_items = true;
                for (const Value& item : v.items()) inline_items = inline_items && is_scalar(item);
            }
            out += '[';
            bool first = true;
            for (const Value& item : v.items()) {
                if (!first) out += inline_items && pretty ? ", " : ",";
                first = false;
                if (!inline_items) newline(depth + 1);
                write(out, item, indent, depth + 1);
            }
            if (!inline_items) newline(depth);
            out += ']';
            return;
        }
        case Value::Kind::Object: {
            if (v.members().empty()) {
                out += "{}";
                return;
            }
            out += '{';
            bool first = true;
            for (const Value::Member& m : v.members()) {
                if (!first) out += ',';
                first = false;
                if (pretty) newline(depth + 1);
                append_escaped(out, m.key);
                out += pretty ? ": " : ":";
                write(out, m.value, indent, depth + 1);
            }
            if (pretty) newline(depth);
            out += '}';
            return;
        }
    }
}

}  // namespace

std::string Value::to_json(int indent) const {
    std::string out;
    write(out, *this, indent, 0);
    return out;
}

std::string Value::brief(size_t max_chars) const {
    std::string s = to_json(-1);
    if (s.size() > max_chars) {
        s.resize(max_chars);
        s += "...";
    }
    return s;
}

int32_t json_kind(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Null: return DS_JSON_NULL;
        case Value::Kind::Bool: return DS_JSON_BOOL;
        case Value::Kind::Number: return DS_JSON_NUMBER;
        case Value::Kind::String: return DS_JSON_STRING;
        case Value::Kind::Array: return DS_JSON_ARRAY;
        case Value::Kind::Object: return DS_JSON_OBJECT;
    }
    return DS_JSON_NULL;
}

const char* kind_name(Value::Kind k) {
    switch (k) {
        case Value::Kind::Null: return "null";
        case Value::Kind::Bool: return "bool";
        case Value::Kind::Number: return "number";
        case Value::Kind::String: return "string";
        case Value::Kind::Array: return "array";
        case Value::Kind::Object: return "object";
    }
    return "?";
}

// ---- path lookup ------------------------------------------------------------------------------

namespace {

[[noreturn]] void bad_path(const char* path, size_t pos, const char* what) {
    fail(DS_ERR_INVALID_ARG, "path \"%s\" is malformed at position %zu: %s", path, pos, what);
}

}  // namespace

namespace {

// One step of a path: a key, or an array index.
struct Step {
    bool is_index;
    std::string key;
    uint64_t index;
    size_t end;  // offset in the path just after this step
};

// Split a path into steps, rejecting malformed paths before anything is looked up.
std::vector<Step> parse_path(const char* path) {
    std::vector<Step> steps;
    const size_t n = std::strlen(path);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && path[i] != '.' && path[i] != '[' && path[i] != ']') ++i;
        if (i < n && path[i] == ']') bad_path(path, i, "']' without a matching '['");
        if (i == start) bad_path(path, i, "empty key (expected a name before '.', '[' or the end)");
        steps.push_back(Step{false, std::string(path + start, i - start), 0, i});
        while (i < n && path[i] == '[') {
            const size_t digits = ++i;
            uint64_t index = 0;
            while (i < n && path[i] >= '0' && path[i] <= '9') {
                if (index > (UINT64_MAX - 9) / 10) bad_path(path, digits, "array index too large");
                index = index * 10 + static_cast<uint64_t>(path[i] - '0');
                ++i;
            }
            if (i == digits) bad_path(path, i, "expected a non-negative decimal index after '['");
            if (i >= n || path[i] != ']') bad_path(path, i, "expected ']' to close the index");
            ++i;
            steps.push_back(Step{true, std::string(), index, i});
        }
        if (i == n) break;
        if (path[i] != '.') bad_path(path, i, "expected '.' or '[' after an index");
        if (++i == n) bad_path(path, i, "empty key after the trailing '.'");
    }
    return steps;
}

const char* article(Value::Kind k) { return k == Value::Kind::Array || k == Value::Kind::Object ? "an" : "a"; }

}  // namespace

const Value& lookup(const Value& root, const char* path) {
    const Value* cur = &root;
    size_t done = 0;  // offset of the path resolved so far
    for (const Step& step : parse_path(path)) {
        const std::string here(path, done);
        if (step.is_index) {
            if (cur->is_null()) fail(DS_ERR_NOT_FOUND, "\"%s\": \"%s\" is null", path, here.c_str());
            if (!cur->is_array())
                fail(DS_ERR_TYPE, "\"%s\": \"%s\" is %s %s, not an array", path, here.c_str(), article(cur->kind()),
                     kind_name(cur->kind()));
            if (step.index >= cur->items().size())
                fail(DS_ERR_NOT_FOUND, "\"%s\": index %llu is out of range; \"%s\" has %zu element(s)", path,
                     static_cast<unsigned long long>(step.index), here.c_str(), cur->items().size());
            cur = &cur->items()[static_cast<size_t>(step.index)];
        } else {
            if (cur->is_null()) fail(DS_ERR_NOT_FOUND, "\"%s\": \"%s\" is null", path, here.c_str());
            if (!cur->is_object())
                fail(DS_ERR_TYPE, "\"%s\": \"%s\" is %s %s, which has no key \"%s\"", path, here.c_str(),
                     article(cur->kind()), kind_name(cur->kind()), step.key.c_str());
            const Value* next = cur->find(step.key);
            if (!next) {
                if (done == 0) fail(DS_ERR_NOT_FOUND, "\"%s\": no key \"%s\" at the top level", path, step.key.c_str());
                fail(DS_ERR_NOT_FOUND, "\"%s\": no key \"%s\" in \"%s\"", path, step.key.c_str(), here.c_str());
            }
            cur = next;
        }
        done = step.end;
    }
    return *cur;
}

}  // namespace ds::config
