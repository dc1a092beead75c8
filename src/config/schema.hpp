// DeepSpeed's config schema as tables: one Field row per key with its type, default, range or
// allowed values, accepted aliases, deprecated names and whether dsabi implements it. The engine in
// validate.cpp walks a Block of rows over the user's JSON and builds the normalised tree; rules.cpp
// holds what does not fit in a row (migrations of deprecated forms, the optimizer and scheduler
// parameters that depend on their "type", checks that span several keys).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "config/report.hpp"
#include "config/value.hpp"

namespace ds::config {

enum class Type {
    Bool,
    Int,     // integral number (5e8 is fine, 1.5 is not)
    Float,   // any finite number
    String,
    Enum,    // one of choices
    Array,   // of elem, optionally of a fixed length
    Object,  // a sub-block validated by its own rows
    Map,     // a free-form object (kwargs, nested settings dsabi passes through)
    Any,     // any JSON value, passed through
};

struct Block;
struct Ctx;

// True when a value switches on a feature (for "unsupported" reporting).
using Predicate = bool (*)(const Value&);
// Rewrite a block's input before validation (migrations), or check its output afterwards.
using Hook = void (*)(Value& obj, const std::string& path, Ctx& ctx);

inline constexpr double kInf = std::numeric_limits<double>::infinity();

struct Field {
    std::string key;
    Type type = Type::Any;

    // Default when the key is absent: none (the key stays absent), null, a value, or (Object) the
    // sub-block with its own defaults.
    enum class Default { None, Null, Value, Block } default_kind = Default::None;
    Value default_value;
    bool nullable = false;  // null is an accepted value
    bool required = false;  // absent is an error

    // Numbers (and array elements): allowed range.
    double lo = -kInf, hi = kInf;
    bool lo_open = false, hi_open = false;
    const char* range_note = nullptr;  // appended to range errors

    // Enum: allowed values; icase: matched case-insensitively and stored in the spelling here.
    std::vector<std::string> choices;
    bool icase = false;

    // Array.
    Type elem = Type::Any;
    int count = -1;  // exact length, or -1

    const Block* block = nullptr;  // Object

    std::vector<std::string> aliases;     // other accepted names (DeepSpeed field aliases)
    std::vector<std::string> deprecated;  // old names: accepted with a warning and migrated

    Predicate unsupported_if = nullptr;  // value switches on something dsabi does not implement
    const char* feature = nullptr;       // its name, for the message

    bool auto_is_value = false;  // "auto" is a real value of this key, not "use the default"
    bool batch = false;          // a batch-size key: "auto" / absent are derived by the batch rule

    // Builder modifiers.
    Field& range(double low, double high) { lo = low, hi = high; return *this; }
    Field& min(double low) { lo = low; return *this; }
    Field& above(double low) { lo = low, lo_open = true; return *this; }
    Field& below(double high) { hi = high, hi_open = true; return *this; }
    Field& note(const char* text) { range_note = text; return *this; }
    Field& null_ok() { nullable = true; return *this; }
    Field& must() { required = true; return *this; }
    Field& alias(std::initializer_list<const char*> names) { aliases.assign(names.begin(), names.end()); return *this; }
    Field& was(std::initializer_list<const char*> names) { deprecated.assign(names.begin(), names.end()); return *this; }
    Field& unsupported(Predicate p, const char* what) { unsupported_if = p, feature = what; return *this; }
    Field& case_insensitive() { icase = true; return *this; }
    Field& auto_value() { auto_is_value = true; return *this; }
    Field& lazy() { default_kind = Default::None; return *this; }  // an Object not filled in when absent
    Field& null_default() { default_kind = Default::Null; nullable = true; return *this; }
    Field& derived() { batch = true; return *this; }
    Field& length(int n) { count = n; return *this; }
};

struct Block {
    std::string name;     // shown in messages ("zero_optimization", "WarmupDecayLR")
    bool strict = false;  // unknown keys are errors (DeepSpeed's pydantic models forbid extras)
    bool open = false;    // unknown keys pass through silently (free-form kwargs)
    std::vector<Field> fields;
    Hook pre = nullptr;
    Hook post = nullptr;
};

// Row builders. A default of nullptr for S/E means null.
Field B(const char* key, bool dflt);
Field B_null(const char* key);  // bool that defaults to null (derived later)
Field I(const char* key, int64_t dflt);
Field I_null(const char* key);  // integer that defaults to null
Field I_none(const char* key);  // integer with no default: absent stays absent
Field F(const char* key, double dflt);
Field F_null(const char* key);
Field F_none(const char* key);
Field S(const char* key, const char* dflt);
Field S_none(const char* key);
Field E(const char* key, const char* dflt, std::initializer_list<const char*> choices);
Field A(const char* key, Type elem, Value dflt);  // dflt may be Value::null()
Field O(const char* key, const Block& block);    // filled with defaults when absent
Field M(const char* key);                        // free-form object, default null
Field M_obj(const char* key);                    // free-form object, default {}
Field X(const char* key, Value dflt);            // any value

// Predicates for Field::unsupported.
bool is_true(const Value& v);
bool is_present(const Value& v);       // anything but null
bool is_positive(const Value& v);      // number > 0
bool is_above_one(const Value& v);     // number > 1
bool is_below_one(const Value& v);     // number < 1
bool has_enabled_true(const Value& v);  // an "enabled": true anywhere inside
bool is_not_disabled(const Value& v);  // present and not {"enabled": false} / false

// Validation context.
struct Ctx {
    Report& report;
    bool strict = false;
    bool accept_auto = true;

    // A feature dsabi does not implement is switched on: a warning, or an error with strict.
    void unsupported(const std::string& path, const std::string& what);
    // An unknown key. in_strict_block: the block forbids extras (always an error).
    // suggest: look for a close known key ("did you mean ...?").
    void unknown_key(const std::string& path, const std::string& key, const Block& block, bool in_strict_block,
                     bool suggest = true);
    void deprecated(const std::string& old_path, const std::string& new_path);
};

// The engine: validate obj (an object) against block, return the normalised object.
Value normalise_block(const Block& block, const Value& obj, const std::string& path, Ctx& ctx);
// The defaults of a block, as an object.
Value block_defaults(const Block& block, const std::string& path, Ctx& ctx);

// The whole schema.
const Block& root_block();
// Parameter blocks by type; nullptr for types whose parameters dsabi passes through unchecked.
struct OptimizerType {
    const char* name;       // lower-case, as DeepSpeed matches it
    const Block* params;    // nullptr: not implemented by dsabi, parameters not checked
    const char* feature;    // for the unsupported message when params == nullptr
};
const std::vector<OptimizerType>& optimizer_types();
struct SchedulerType {
    const char* name;
    const Block* params;
};
const std::vector<SchedulerType>& scheduler_types();

// Rules (rules.cpp).
void root_pre(Value& obj, const std::string& path, Ctx& ctx);
void root_post(Value& obj, const std::string& path, Ctx& ctx);
void zero_pre(Value& obj, const std::string& path, Ctx& ctx);
void zero_post(Value& obj, const std::string& path, Ctx& ctx);
void curriculum_post(Value& obj, const std::string& path, Ctx& ctx);
void optimizer_post(Value& obj, const std::string& path, Ctx& ctx);
void scheduler_post(Value& obj, const std::string& path, Ctx& ctx);

// Edit distance, and the closest candidate when it is close enough to suggest ("" otherwise).
size_t edit_distance(const std::string& a, const std::string& b);
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace ds::config
