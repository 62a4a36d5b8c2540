// The "pre_tokenizer" of a Hugging Face tokenizer.json: Sequence, Split (String or any Regex, every behavior,
// invert), ByteLevel (add_prefix_space, use_regex), Metaspace (replacement, prepend_scheme, split), Digits,
// Punctuation, Whitespace, WhitespaceSplit and BertPreTokenizer, with the semantics of the Rust `tokenizers`
// library (tokenizers/src/pre_tokenizers, NormalizedString::split). Split regexes that are one of the GPT-2 /
// Llama-3 / Qwen2 patterns run on the hand-written HfSplitPattern; any other regex runs on ICU (HfRegex).
#pragma once

#include "tokenizer/hf_regex.h"
#include "tokenizer/hf_split_pattern.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

class HfPreTokenizer {
public:
    enum class Kind { Split, ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit, Bert };
    enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
    enum class Prepend { Always, First, Never };

    struct Step {
        Kind kind = Kind::Split;
        // Split: one of the three kinds of pattern
        std::optional<HfSplitPattern> fast;
        std::shared_ptr<HfRegex> regex;
        std::string literal;
        Behavior behavior = Behavior::Isolated; // Split, Punctuation
        bool invert = false;
        // ByteLevel
        bool addPrefixSpace = false;
        bool useRegex = true;
        bool spellBytes = false; // not the last step: the pieces are spelled with the byte alphabet here
        // Metaspace
        std::string replacement = "\xE2\x96\x81";
        Prepend prepend = Prepend::Always;
        bool split = true;
        // Digits
        bool individualDigits = false;
    };

    // Parses tokenizer.json's "pre_tokenizer" value (an object); `where` names the file and part in errors.
    static HfPreTokenizer parse(const nlohmann::json& config, const std::string& where);

    const std::vector<Step>& steps() const { return steps_; }
    // True when the last step is ByteLevel: the pieces then hold raw bytes, which the model spells with the
    // byte alphabet itself (cheaper than spelling them here).
    bool bytesOut() const { return !steps_.empty() && steps_.back().kind == Kind::ByteLevel; }

    // Appends the pieces of `text` (never empty ones) to `out`. `atStart`: `text` begins the input (Metaspace's
    // prepend_scheme "first").
    void split(std::string_view text, bool atStart, std::vector<std::string>& out) const;

private:
    void addStep(const nlohmann::json& config, const std::string& type, const std::string& where);
    std::vector<Step> steps_;
};

} // namespace qpruner
