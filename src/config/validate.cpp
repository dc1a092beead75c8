// The schema engine: walks a Block's rows over a JSON object, checks types, ranges and allowed
// values, resolves aliases and deprecated names, applies "auto" and defaults, reports unknown keys
// and unsupported features, and builds the normalised object.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <unordered_map>

#include "config/schema.hpp"
#include "core/error.hpp"

namespace ds::config {

// ---- context ----------------------------------------------------------------------------------

void Ctx::unsupported(const std::string& path, const std::string& what) {
    if (strict)
        report.error(DS_ERR_CONFIG_UNSUPPORTED, path, "not implemented by dsabi: " + what + " (strict mode)");
    else
        report.warning(kind::kUnsupported, path, "not implemented by dsabi: " + what + "; the setting is ignored");
}

void Ctx::unknown_key(const std::string& path, const std::string& key, const Block& block, bool in_strict_block,
                      bool suggest) {
    std::vector<std::string> candidates;
    for (const Field& f : block.fields) {
        candidates.push_back(f.key);
        candidates.insert(candidates.end(), f.aliases.begin(), f.aliases.end());
        candidates.insert(candidates.end(), f.deprecated.begin(), f.deprecated.end());
    }
    std::string msg = "unknown key";
    if (in_strict_block) msg += " (" + block.name + " accepts only its own keys, as in DeepSpeed)";
    std::string suggestion = suggest ? closest(key, candidates) : std::string();
    if (!suggestion.empty()) msg += "; did you mean '" + suggestion + "'?";
    if (in_strict_block)
        report.error(DS_ERR_CONFIG_UNKNOWN_KEY, path, msg);
    else if (strict)
        report.error(DS_ERR_CONFIG_UNKNOWN_KEY, path, msg + " (strict mode)");
    else
        report.warning(kind::kUnknownKey, path, msg + "; it is kept but not used");
}

void Ctx::deprecated(const std::string& old_path, const std::string& new_path) {
    report.warning(kind::kDeprecated, old_path, old_path + " is deprecated, use " + new_path);
}

// ---- suggestions ------------------------------------------------------------------------------

size_t edit_distance(const std::string& a, const std::string& b) {
    // Levenshtein distance, case-insensitive, two rows.
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                              std::tolower(static_cast<unsigned char>(b[j - 1]));
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
    if (word.size() > 200) return "";  // not a key anyone mistyped; keep the cost bounded
    const size_t budget = word.size() <= 4 ? 1 : word.size() <= 10 ? 2 : 3;
    std::string best;
    size_t best_distance = budget + 1;
    for (const std::string& c : candidates) {
        size_t d = edit_distance(word, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    return best;
}

// ---- scalar checks ----------------------------------------------------------------------------

namespace {

std::string num_text(double d) { return format_double(d, false); }

// " in [0, 3]", " >= 0", " > 0", "" for an unbounded field.
std::string range_text(const Field& f) {
    const bool has_lo = std::isfinite(f.lo), has_hi = std::isfinite(f.hi);
    if (has_lo && has_hi)
        return " in " + std::string(f.lo_open ? "(" : "[") + num_text(f.lo) + ", " + num_text(f.hi) + (f.hi_open ? ")" : "]");
    if (has_lo) return std::string(f.lo_open ? " > " : " >= ") + num_text(f.lo);
    if (has_hi) return std::string(f.hi_open ? " < " : " <= ") + num_text(f.hi);
    return "";
}

bool in_range(const Field& f, double d) {
    if (f.lo_open ? !(d > f.lo) : !(d >= f.lo)) return false;
    if (f.hi_open ? !(d < f.hi) : !(d <= f.hi)) return false;
    return true;
}

std::string got(const Value& v) { return v.brief() + " (" + kind_name(v.kind()) + ")"; }

std::string type_text(Type t, const Field& f) {
    switch (t) {
        case Type::Bool: return "true or false";
        case Type::Int: return "an integer" + range_text(f);
        case Type::Float: return "a number" + range_text(f);
        case Type::String: return "a string";
        case Type::Enum: {
            std::string s = "one of ";
            for (size_t i = 0; i < f.choices.size(); ++i) s += (i ? ", \"" : "\"") + f.choices[i] + "\"";
            return s;
        }
        case Type::Array: {
            std::string s = "an array";
            if (f.count >= 0) s += " of " + std::to_string(f.count);
            if (f.elem == Type::Int) return s + " integers";
            if (f.elem == Type::Float) return s + " numbers";
            if (f.elem == Type::String) return s + " strings";
            return s;
        }
        case Type::Object:
        case Type::Map: return "an object";
        case Type::Any: return "a value";
    }
    return "a value";
}

bool equals_icase(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

// Check one scalar (or array element) of type t. On success *out holds the normalised value.
bool check_scalar(Type t, const Field& f, const Value& v, const std::string& path, Ctx& ctx, Value* out) {
    auto wrong = [&](const std::string& extra) {
        std::string note = f.range_note ? std::string(" ") + f.range_note : "";
        ctx.report.error(DS_ERR_CONFIG_VALUE, path, "expected " + type_text(t, f) + ", got " + got(v) + extra + note);
        return false;
    };
    switch (t) {
        case Type::Bool:
            if (v.is_bool()) {
                *out = v;
                return true;
            }
            // Python's truthiness lets 0/1 and "true"/"false" through; accept them, but say so.
            if ((v.is_integer() && (v.as_int() == 0 || v.as_int() == 1)) ||
                (v.is_string() && (equals_icase(v.as_string(), "true") || equals_icase(v.as_string(), "false")))) {
                bool b = v.is_number() ? v.as_int() == 1 : equals_icase(v.as_string(), "true");
                ctx.report.warning(kind::kValue, path,
                                   "expected true or false; " + v.brief() + " is taken as " + (b ? "true" : "false"));
                *out = Value::boolean(b);
                return true;
            }
            return wrong("");
        case Type::Int: {
            if (!v.is_number()) return wrong("");
            int64_t i = 0;
            if (v.is_integer()) {
                i = v.as_int();
            } else if (v.as_double() == 9223372036854775808.0) {
                i = INT64_MAX;  // 9223372036854775807 (Python's sys.maxsize) reads back as 2^63
            } else if (std::floor(v.as_double()) == v.as_double()) {
                return wrong(", which does not fit in 64 bits");
            } else {
                return wrong("");
            }
            if (!in_range(f, static_cast<double>(i))) return wrong("");
            *out = Value::integer(i);
            return true;
        }
        case Type::Float:
            if (!v.is_number() || !in_range(f, v.as_double())) return wrong("");
            *out = Value::real(v.as_double());
            return true;
        case Type::String:
            if (!v.is_string()) return wrong("");
            *out = v;
            return true;
        case Type::Enum: {
            if (!v.is_string()) return wrong("");
            for (const std::string& c : f.choices) {
                if (c == v.as_string() || (f.icase && equals_icase(c, v.as_string()))) {
                    *out = Value::string(c);
                    return true;
                }
            }
            std::string suggestion = closest(v.as_string(), f.choices);
            return wrong(suggestion.empty() ? "" : "; did you mean \"" + suggestion + "\"?");
        }
        case Type::Any:
            *out = v;
            return true;
        case Type::Array:
        case Type::Object:
        case Type::Map: break;
    }
    return wrong("");
}

bool check_array(const Field& f, const Value& v, const std::string& path, Ctx& ctx, Value* out) {
    if (!v.is_array()) {
        ctx.report.error(DS_ERR_CONFIG_VALUE, path, "expected " + type_text(Type::Array, f) + ", got " + got(v));
        return false;
    }
    if (f.count >= 0 && v.items().size() != static_cast<size_t>(f.count)) {
        ctx.report.error(DS_ERR_CONFIG_VALUE, path,
                         "expected " + type_text(Type::Array, f) + ", got " + std::to_string(v.items().size()) + " elements");
        return false;
    }
    Value arr = Value::array();
    bool ok = true;
    for (size_t i = 0; i < v.items().size(); ++i) {
        Value item;
        if (check_scalar(f.elem, f, v.items()[i], path + "[" + std::to_string(i) + "]", ctx, &item))
            arr.push(std::move(item));
        else
            ok = false;
    }
    if (ok) *out = std::move(arr);
    return ok;
}

std::string auto_note(const Field& f) {
    switch (f.default_kind) {
        case Field::Default::Value: return "\"auto\": using the default " + f.default_value.brief();
        case Field::Default::Null: return "\"auto\": using the default null";
        case Field::Default::Block: return "\"auto\": using the defaults of the block";
        case Field::Default::None: break;
    }
    if (f.batch) return "\"auto\": derived by the batch-size rule";
    return "\"auto\": no default; the key is left unset";
}

// Validate one field. in == nullptr when absent. Returns false when the key is to be left out.
bool normalise_field(const Field& f, const std::string& owner, const Value* in, const std::string& path, Ctx& ctx,
                     Value* out) {
    bool absent = in == nullptr;
    if (in && in->is_auto() && !f.auto_is_value && f.type != Type::Any && f.type != Type::Map) {
        if (!ctx.accept_auto) {
            ctx.report.error(DS_ERR_CONFIG_VALUE, path, "\"auto\" is not accepted (accept_auto is off); give " + type_text(f.type, f));
            return false;
        }
        if (f.required && f.default_kind == Field::Default::None) {
            ctx.report.error(DS_ERR_CONFIG_VALUE, path, "\"auto\" cannot be used here: there is no default; give " +
                                                            type_text(f.type, f));
            return false;
        }
        ctx.report.info(kind::kAuto, path, auto_note(f));
        absent = true;
    } else if (in && in->is_null()) {
        if (f.type == Type::Object) {
            absent = true;  // null block = the defaults, as when absent
        } else if (f.nullable) {
            *out = Value::null();
            return true;
        } else {
            ctx.report.error(DS_ERR_CONFIG_VALUE, path, "null is not allowed; expected " + type_text(f.type, f));
            return false;
        }
    }

    if (absent) {
        if (f.required && in == nullptr) {
            ctx.report.error(DS_ERR_CONFIG_VALUE, path, "required key is missing (needed by " + owner + ")");
            return false;
        }
        switch (f.default_kind) {
            case Field::Default::None: return false;
            case Field::Default::Null: *out = Value::null(); return true;
            case Field::Default::Value: *out = f.default_value; return true;
            case Field::Default::Block: *out = block_defaults(*f.block, path, ctx); return true;
        }
        return false;
    }

    bool ok = false;
    switch (f.type) {
        case Type::Array: ok = check_array(f, *in, path, ctx, out); break;
        case Type::Object:
            if (!in->is_object()) {
                ctx.report.error(DS_ERR_CONFIG_VALUE, path, "expected an object, got " + got(*in));
                return false;
            }
            *out = normalise_block(*f.block, *in, path, ctx);
            ok = true;
            break;
        case Type::Map:
            if (!in->is_object()) {
                ctx.report.error(DS_ERR_CONFIG_VALUE, path, "expected an object, got " + got(*in));
                return false;
            }
            *out = *in;
            ok = true;
            break;
        default: ok = check_scalar(f.type, f, *in, path, ctx, out); break;
    }
    if (ok && f.unsupported_if && f.unsupported_if(*out)) ctx.unsupported(path, f.feature);
    return ok;
}

}  // namespace

// ---- blocks -----------------------------------------------------------------------------------

namespace {
constexpr size_t kMaxSuggestions = 64;
}  // namespace

Value normalise_block(const Block& block, const Value& obj, const std::string& path, Ctx& ctx) {
    Value in = obj;
    if (block.pre) block.pre(in, path, ctx);
    const std::vector<Value::Member>& members = in.members();
    std::vector<bool> used(members.size(), false);
    std::unordered_map<std::string, size_t> position;
    for (size_t i = 0; i < members.size(); ++i) position.emplace(members[i].key, i);
    auto index_of = [&](const std::string& key) -> int {
        auto it = position.find(key);
        return it == position.end() ? -1 : static_cast<int>(it->second);
    };

    Value out = Value::object();
    for (const Field& f : block.fields) {
        // Every spelling of this field that the input uses: the key, its aliases, its old names.
        struct Hit {
            int index;
            const std::string* name;
            bool deprecated;
        };
        std::vector<Hit> hits;
        auto look = [&](const std::string& name, bool deprecated) {
            int i = index_of(name);
            if (i >= 0) {
                hits.push_back(Hit{i, &name, deprecated});
                used[static_cast<size_t>(i)] = true;
            }
        };
        look(f.key, false);
        for (const std::string& a : f.aliases) look(a, false);
        for (const std::string& d : f.deprecated) look(d, true);

        const std::string field_path = join_path(path, f.key);
        for (const Hit& h : hits)
            if (h.deprecated) ctx.deprecated(join_path(path, *h.name), field_path);
        if (hits.size() > 1) {
            std::string names;
            for (const Hit& h : hits) names += (names.empty() ? "'" : " and '") + *h.name + "'";
            ctx.report.error(DS_ERR_CONFIG_VALUE, field_path, names + " are the same setting; give only '" + f.key + "'");
        }
        const Value* value = hits.empty() ? nullptr : &members[static_cast<size_t>(hits.front().index)].value;
        Value result;
        if (normalise_field(f, block.name, value, field_path, ctx, &result)) out.append(f.key, std::move(result));
    }

    size_t unknown = 0;
    for (size_t i = 0; i < members.size(); ++i) {
        if (used[i]) continue;
        const Value::Member& m = members[i];
        // Suggestions cost an edit distance per known key: offer them for the first few only.
        if (!block.open) ctx.unknown_key(join_path(path, m.key), m.key, block, block.strict, ++unknown <= kMaxSuggestions);
        if (block.open || !block.strict) out.append(m.key, m.value);  // kept as given
    }

    if (block.post) block.post(out, path, ctx);
    return out;
}

Value block_defaults(const Block& block, const std::string& path, Ctx& ctx) {
    return normalise_block(block, Value::object(), path, ctx);
}

}  // namespace ds::config
