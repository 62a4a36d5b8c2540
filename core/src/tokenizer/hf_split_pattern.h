// The pre-tokenizer regexes of byte-level BPE tokenizers (GPT-2, Llama-3, Qwen2), implemented by hand:
// std::regex has no \p{L} / \p{N}. Each pattern is an ordered alternation; the matcher below reproduces the
// backtracking regex's choice at every position, including the lookahead in \s+(?!\S).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace qpruner {

class HfSplitPattern {
public:
    // The pattern written in `regex` if it is one of the known ones, else nullopt:
    //   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    //   Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
    //            \s*[\r\n]+|\s+(?!\S)|\s+        (Qwen2: the same with \p{N} instead of \p{N}{1,3})
    static std::optional<HfSplitPattern> fromRegex(std::string_view regex);
    static HfSplitPattern gpt2();
    static HfSplitPattern llama3();
    static HfSplitPattern qwen2();

    // The pattern's source text, exactly as fromRegex() accepts it (e.g. to name the pre-tokenizer in a GGUF
    // export); for gpt2() the regex ByteLevel's use_regex stands for.
    std::string_view regex() const { return regex_; }

    // The matches of the pattern, in order. They cover `text` completely (every character falls in one of
    // the alternatives), so concatenating them gives `text` back. Malformed UTF-8 bytes count as one
    // character each that is neither letter, number nor space.
    std::vector<std::string_view> split(std::string_view text) const;

private:
    enum class Family { Gpt2, Llama3 };
    struct Char;

    HfSplitPattern(Family family, int maxDigits, std::string_view regex)
        : family_(family), maxDigits_(maxDigits), regex_(regex)
    {
    }
    std::size_t matchAt(const std::vector<Char>& chars, std::size_t i) const;
    std::size_t matchContraction(const std::vector<Char>& chars, std::size_t i) const;

    Family family_;
    int maxDigits_; // 0: unbounded
    std::string_view regex_; // one of the static pattern texts in hf_split_pattern.cpp
};

} // namespace qpruner
