// The "normalizer" of a Hugging Face tokenizer.json: Sequence, NFC / NFD / NFKC / NFKD (ICU), Lowercase, Strip,
// StripAccents, Replace (String or Regex pattern), Prepend, ByteLevel and Precompiled (a SentencePiece character
// map, applied per grapheme cluster), in order, with the semantics of the Rust `tokenizers` library
// (tokenizers/src/normalizers). Other types are refused with a FormatError.
#pragma once

#include "tokenizer/hf_regex.h"
#include "tokenizer/sentencepiece_charsmap.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

class HfNormalizer {
public:
    enum class Kind { Nfc, Nfd, Nfkc, Nfkd, Lowercase, Strip, StripAccents, Replace, Prepend, ByteLevel, Precompiled };
    struct Step {
        Kind kind;
        std::string text;               // Replace: the String pattern; Prepend: what is prepended
        std::string content;            // Replace: the replacement (taken literally)
        std::shared_ptr<HfRegex> regex; // Replace with a Regex pattern
        bool left = false, right = false; // Strip
        std::shared_ptr<PrecompiledCharsMap> charsMap; // Precompiled
    };

    // Parses tokenizer.json's "normalizer" value (an object). `where` names the file and part in errors
    // ("tokenizer file X: normalizer"). Sequences are flattened.
    static HfNormalizer parse(const nlohmann::json& config, const std::string& where);

    bool empty() const { return steps_.empty(); }
    const std::vector<Step>& steps() const { return steps_; }

    // The normalized text. Malformed UTF-8 is read as U+FFFD by the Unicode forms and Lowercase.
    std::string normalize(std::string_view text) const;

private:
    void addStep(const nlohmann::json& config, const std::string& type, const std::string& where);
    std::vector<Step> steps_;
};

} // namespace qpruner
