// The JSON tree dsabi keeps for a config: an ordered, immutable-after-build document with exact
// 64-bit integers (cJSON only has doubles), plus path lookup and a serializer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dsabi.h"

namespace ds::config {

class Value {
public:
    enum class Kind { Null, Bool, Number, String, Array, Object };
    struct Member;

    Value() = default;
    static Value null() { return Value(); }
    static Value boolean(bool b);
    static Value integer(int64_t i);
    static Value real(double d);       // printed with a decimal point or exponent ("1.0")
    static Value number(double d);     // from JSON text: integral values become exact integers
    static Value string(std::string s);
    static Value array();
    static Value object();

    Kind kind() const { return kind_; }
    bool is_null() const { return kind_ == Kind::Null; }
    bool is_bool() const { return kind_ == Kind::Bool; }
    bool is_number() const { return kind_ == Kind::Number; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_array() const { return kind_ == Kind::Array; }
    bool is_object() const { return kind_ == Kind::Object; }
    bool is_true() const { return kind_ == Kind::Bool && bool_; }
    bool is_auto() const { return kind_ == Kind::String && str_ == "auto"; }

    bool as_bool() const { return bool_; }
    double as_double() const { return is_int_ ? static_cast<double>(int_) : num_; }
    // Exact integer value: true for integral numbers that fit in int64.
    bool is_integer() const { return kind_ == Kind::Number && is_int_; }
    int64_t as_int() const { return int_; }
    const std::string& as_string() const { return str_; }

    // Arrays.
    const std::vector<Value>& items() const { return items_; }
    void push(Value v) { items_.push_back(std::move(v)); }

    // Objects (insertion order is kept; keys are unique once validated).
    const std::vector<Member>& members() const { return members_; }
    const Value* find(const std::string& key) const;
    Value* find(const std::string& key);
    // Set key (replacing an existing member in place, or appending).
    void set(const std::string& key, Value v);
    // Append a member whose key the caller knows is not there yet (no search).
    void append(std::string key, Value v);
    bool erase(const std::string& key);
    size_t size() const { return kind_ == Kind::Array ? items_.size() : members_.size(); }

    bool operator==(const Value& o) const;
    bool operator!=(const Value& o) const { return !(*this == o); }

    // Serialise as JSON. indent < 0: compact; otherwise pretty with that many spaces per level
    // (arrays of scalars stay on one line).
    std::string to_json(int indent = -1) const;
    // Short rendering for messages: compact JSON, cut at max_chars.
    std::string brief(size_t max_chars = 60) const;

private:
    Kind kind_ = Kind::Null;
    bool bool_ = false;
    bool is_int_ = false;
    int64_t int_ = 0;
    double num_ = 0.0;
    std::string str_;
    std::vector<Value> items_;
    std::vector<Member> members_;
};

struct Value::Member {
    std::string key;
    Value value;
};

// The JSON kind of a value, as enum ds_json_kind.
int32_t json_kind(const Value& v);
const char* kind_name(Value::Kind k);  // "null", "bool", "number", ...

// Resolve a getter path ("optimizer.params.betas[1]") under root. Throws ds::Error with
// DS_ERR_INVALID_ARG (malformed path, with the position), DS_ERR_NOT_FOUND (missing key or index)
// or DS_ERR_TYPE (stepping into a scalar). An empty path is the root itself.
const Value& lookup(const Value& root, const char* path);

// Format a double as the shortest text that reads back to the same value.
std::string format_double(double d, bool force_decimal);

}  // namespace ds::config
