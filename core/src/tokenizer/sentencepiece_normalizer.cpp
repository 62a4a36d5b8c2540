// SentencePiece's normalizer (see sentencepiece_normalizer.h). Only ' ' (U+0020) counts as whitespace here:
// tabs and newlines are ordinary characters unless the character map rewrites them, as in normalizer.cc.
#include "tokenizer/sentencepiece_normalizer.h"

#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/utf8.h"

namespace qpruner {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81"; // U+2581
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD"; // U+FFFD

} // namespace

SentencePieceNormalizer::SentencePieceNormalizer(const SentencePieceModel& model,
                                                 const PrefixMatcher& userDefined, const std::string& fileName)
    : userDefined_(userDefined),
      addDummyPrefix_(model.addDummyPrefix),
      removeExtraWhitespaces_(model.removeExtraWhitespaces),
      escapeWhitespaces_(model.escapeWhitespaces)
{
    if (!model.precompiledCharsmap.empty())
        charsMap_.emplace(model.precompiledCharsmap, "tokenizer file " + fileName + ": normalizer_spec");
}

std::string_view SentencePieceNormalizer::nextUnit(std::string_view input, std::size_t* consumed) const
{
    if (const std::size_t n = userDefined_.longestMatch(input); n > 0) {
        *consumed = n;
        return input.substr(0, n);
    }
    if (charsMap_)
        if (const auto m = charsMap_->longestPrefix(input)) {
            *consumed = m->length;
            return m->replacement;
        }
    const Utf8Char c = decodeUtf8(input);
    *consumed = c.length;
    return c.valid ? input.substr(0, c.length) : kReplacementChar;
}

std::string SentencePieceNormalizer::normalize(std::string_view input) const
{
    std::string out;
    std::size_t consumed = 0;
    if (removeExtraWhitespaces_) {
        while (!input.empty()) {
            if (nextUnit(input, &consumed) != " ")
                break;
            input.remove_prefix(consumed);
        }
    }
    if (input.empty())
        return out;

    out.reserve(input.size() * 3 / 2 + 4);
    auto appendSpace = [&] {
        if (escapeWhitespaces_)
            out.append(kSpaceSymbol);
        else
            out += ' ';
    };
    if (addDummyPrefix_)
        appendSpace();

    bool prevSpace = removeExtraWhitespaces_;
    while (!input.empty()) {
        std::string_view unit = nextUnit(input, &consumed);
        if (prevSpace)
            while (unit.starts_with(' '))
                unit.remove_prefix(1);
        if (!unit.empty()) {
            for (const char ch : unit) {
                if (escapeWhitespaces_ && ch == ' ')
                    out.append(kSpaceSymbol);
                else
                    out += ch;
            }
            prevSpace = unit.ends_with(' ');
        }
        input.remove_prefix(consumed);
        if (!removeExtraWhitespaces_)
            prevSpace = false;
    }

    if (removeExtraWhitespaces_) {
        const std::string_view space = escapeWhitespaces_ ? kSpaceSymbol : std::string_view(" ");
        while (std::string_view(out).ends_with(space))
            out.resize(out.size() - space.size());
    }
    return out;
}

} // namespace qpruner
