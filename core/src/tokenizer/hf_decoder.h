// The "decoder" of a Hugging Face tokenizer.json, which turns token strings back into text: Sequence, ByteLevel,
// Replace (String or Regex), ByteFallback, Fuse, Strip, Metaspace and BPEDecoder, with the semantics of the Rust
// `tokenizers` library (tokenizers/src/decoders: each decoder maps the list of token strings to a new list).
#pragma once

#include "tokenizer/hf_regex.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace qpruner {

class HfDecoder {
public:
    enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Bpe };
    struct Step {
        Kind kind;
        std::string pattern;            // Replace: String pattern
        std::shared_ptr<HfRegex> regex; // Replace: Regex pattern
        std::string content;            // Replace: replacement; Strip: the character stripped; Metaspace: replacement; Bpe: suffix
        std::size_t start = 0, stop = 0; // Strip
        bool prependFirst = true;        // Metaspace: prepend_scheme other than "never"
    };

    // Parses tokenizer.json's "decoder" value (an object); `where` names the file and part in errors.
    static HfDecoder parse(const nlohmann::json& config, const std::string& where);

    const std::vector<Step>& steps() const { return steps_; }
    bool isByteLevelOnly() const { return steps_.size() == 1 && steps_[0].kind == Kind::ByteLevel; }

    // The text of `tokens` (Decoder::decode: decode_chain, then the pieces concatenated).
    std::string decode(std::vector<std::string> tokens) const;

private:
    void addStep(const nlohmann::json& config, const std::string& type, const std::string& where);
    std::vector<Step> steps_;
};

} // namespace qpruner
