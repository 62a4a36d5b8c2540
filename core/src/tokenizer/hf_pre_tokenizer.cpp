// tokenizer.json pre-tokenizers (see hf_pre_tokenizer.h). Every step turns each piece into the list of its
// matches and non-matches and then applies the split behavior, as NormalizedString::split does.
#include "tokenizer/hf_pre_tokenizer.h"

#include "qpruner/error.h"
#include "tokenizer/hf_component.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>

#include <algorithm>
#include <cctype>

namespace qpruner {

namespace {

using nlohmann::json;
using Behavior = HfPreTokenizer::Behavior;


struct Span {
    std::size_t begin;
    std::size_t end;
    bool match; // for the behavior: a match of the pattern (after invert)
};

bool boolOr(const json& obj, const char* key, bool fallback)
{
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? fallback : it->get<bool>();
}

Behavior behaviorOf(const json& config, const std::string& where, Behavior fallback)
{
    const auto it = config.find("behavior");
    if (it == config.end() || it->is_null())
        return fallback;
    const std::string b = it->get<std::string>();
    if (b == "Removed")
        return Behavior::Removed;
    if (b == "Isolated")
        return Behavior::Isolated;
    if (b == "MergedWithPrevious")
        return Behavior::MergedWithPrevious;
    if (b == "MergedWithNext")
        return Behavior::MergedWithNext;
    if (b == "Contiguous")
        return Behavior::Contiguous;
    throw FormatError(where + ": split behavior '" + b + "' is unknown");
}

// Matches and the text between them, covering `text` (Pattern::find_matches).
std::vector<Span> cover(std::string_view text, const std::vector<std::pair<std::size_t, std::size_t>>& matches)
{
    std::vector<Span> out;
    out.reserve(matches.size() * 2 + 1);
    std::size_t prev = 0;
    for (const auto& [b, e] : matches) {
        if (b > prev)
            out.push_back({prev, b, false});
        out.push_back({b, e, true});
        prev = e;
    }
    if (prev < text.size())
        out.push_back({prev, text.size(), false});
    return out;
}

// Every character for which `pred` holds is a match of its own.
template <class Pred>
std::vector<Span> charMatches(std::string_view text, Pred&& pred)
{
    std::vector<Span> out;
    std::size_t last = 0;
    for (std::size_t i = 0; i < text.size();) {
        const Utf8Char c = decodeUtf8(text.substr(i));
        if (c.valid && pred(c.codepoint)) {
            if (last < i)
                out.push_back({last, i, false});
            out.push_back({i, i + c.length, true});
            last = i + c.length;
        }
        i += c.length;
    }
    if (last < text.size())
        out.push_back({last, text.size(), false});
    return out;
}

std::vector<Span> literalMatches(std::string_view text, std::string_view literal)
{
    std::vector<std::pair<std::size_t, std::size_t>> hits;
    for (std::size_t at = 0; (at = text.find(literal, at)) != std::string_view::npos; at += literal.size())
        hits.emplace_back(at, at + literal.size());
    return cover(text, hits);
}

// NormalizedString::split: the kept spans of `text` for `behavior`; appends the non-empty ones to `out` and
// returns whether the first one appended starts at offset 0.
bool applyBehavior(std::string_view text, std::vector<Span> spans, Behavior behavior, bool invert,
                   std::vector<std::string>& out)
{
    if (invert)
        for (Span& s : spans)
            s.match = !s.match;
    struct Kept {
        std::size_t begin, end;
        bool remove;
    };
    std::vector<Kept> kept;
    kept.reserve(spans.size());
    switch (behavior) {
    case Behavior::Isolated:
        for (const Span& s : spans)
            kept.push_back({s.begin, s.end, false});
        break;
    case Behavior::Removed:
        for (const Span& s : spans)
            kept.push_back({s.begin, s.end, s.match});
        break;
    case Behavior::Contiguous: {
        bool previous = false;
        for (const Span& s : spans) {
            if (s.match == previous && !kept.empty())
                kept.back().end = s.end;
            else
                kept.push_back({s.begin, s.end, false});
            previous = s.match;
        }
        break;
    }
    case Behavior::MergedWithPrevious: {
        bool previous = false;
        for (const Span& s : spans) {
            if (s.match && !previous && !kept.empty())
                kept.back().end = s.end;
            else
                kept.push_back({s.begin, s.end, false});
            previous = s.match;
        }
        break;
    }
    case Behavior::MergedWithNext: {
        bool previous = false;
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
            if (it->match && !previous && !kept.empty())
                kept.back().begin = it->begin;
            else
                kept.push_back({it->begin, it->end, false});
            previous = it->match;
        }
        std::reverse(kept.begin(), kept.end());
        break;
    }
    }
    bool firstAtZero = false, first = true;
    for (const Kept& k : kept) {
        if (k.remove || k.end == k.begin)
            continue;
        if (first)
            firstAtZero = k.begin == 0;
        first = false;
        out.emplace_back(text.substr(k.begin, k.end - k.begin));
    }
    return firstAtZero;
}

const HfRegex& whitespaceRegex()
{
    static const HfRegex re("\\w+|[^\\w\\s]+", "Whitespace pre-tokenizer");
    return re;
}

bool isPunctuation(char32_t c)
{
    return (c < 0x80 && std::ispunct(static_cast<int>(c))) || u_ispunct(static_cast<UChar32>(c));
}

} // namespace

HfPreTokenizer HfPreTokenizer::parse(const json& config, const std::string& where)
{
    HfPreTokenizer p;
    forEachHfComponent(config, "pretokenizers", where,
                       [&](const json& c, const std::string& type) { p.addStep(c, type, where); });
    for (std::size_t i = 0; i + 1 < p.steps_.size(); ++i)
        if (p.steps_[i].kind == Kind::ByteLevel)
            p.steps_[i].spellBytes = true;
    return p;
}

void HfPreTokenizer::addStep(const json& config, const std::string& type, const std::string& where)
{
    Step step;
    if (type == "Split") {
        step.kind = Kind::Split;
        step.behavior = behaviorOf(config, where + ": Split", Behavior::Isolated);
        if (!config.contains("behavior"))
            throw FormatError(where + ": Split has no 'behavior'");
        step.invert = boolOr(config, "invert", false);
        const json& pattern = config.at("pattern");
        if (pattern.contains("Regex")) {
            const std::string regex = pattern["Regex"].get<std::string>();
            step.fast = HfSplitPattern::fromRegex(regex);
            if (!step.fast)
                step.regex = std::make_shared<HfRegex>(regex, where + ": Split");
        } else if (pattern.contains("String")) {
            step.literal = pattern["String"].get<std::string>();
        } else {
            throw FormatError(where + ": Split pattern is neither String nor Regex");
        }
    } else if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
        step.addPrefixSpace = boolOr(config, "add_prefix_space", true);
        step.useRegex = boolOr(config, "use_regex", true);
        if (step.useRegex)
            step.fast = HfSplitPattern::gpt2();
    } else if (type == "Metaspace") {
        step.kind = Kind::Metaspace;
        if (const auto it = config.find("replacement"); it != config.end() && !it->is_null()) {
            step.replacement = it->get<std::string>();
            const Utf8Char c = step.replacement.empty() ? Utf8Char{} : decodeUtf8(step.replacement);
            if (!c.valid || c.length != step.replacement.size())
                throw FormatError(where + ": Metaspace replacement '" + step.replacement +
                                  "' is not one character");
        }
        step.split = boolOr(config, "split", true);
        std::string scheme = config.value("prepend_scheme", std::string());
        if (scheme.empty()) // files older than prepend_scheme: add_prefix_space
            scheme = boolOr(config, "add_prefix_space", true) ? "always" : "never";
        if (scheme == "always")
            step.prepend = Prepend::Always;
        else if (scheme == "first")
            step.prepend = Prepend::First;
        else if (scheme == "never")
            step.prepend = Prepend::Never;
        else
            throw FormatError(where + ": Metaspace prepend_scheme '" + scheme + "' is unknown");
    } else if (type == "Digits") {
        step.kind = Kind::Digits;
        step.individualDigits = boolOr(config, "individual_digits", false);
    } else if (type == "Punctuation") {
        step.kind = Kind::Punctuation;
        step.behavior = behaviorOf(config, where + ": Punctuation", Behavior::Isolated);
    } else if (type == "Whitespace") {
        step.kind = Kind::Whitespace;
    } else if (type == "WhitespaceSplit") {
        step.kind = Kind::WhitespaceSplit;
    } else if (type == "BertPreTokenizer") {
        step.kind = Kind::Bert;
    } else {
        throw FormatError(where + " type '" + type +
                          "' is not supported (only Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, "
                          "Whitespace, WhitespaceSplit, BertPreTokenizer)");
    }
    steps_.push_back(std::move(step));
}

void HfPreTokenizer::split(std::string_view text, bool atStart, std::vector<std::string>& out) const
{
    if (text.empty())
        return;
    std::vector<std::string> pieces{std::string(text)};
    std::vector<std::string> next;
    for (const Step& step : steps_) {
        next.clear();
        next.reserve(pieces.size() + 8);
        bool nextAtStart = false;
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            std::string& p = pieces[i];
            const bool pieceAtStart = atStart && i == 0;
            const std::size_t before = next.size();
            bool firstAtZero = true;
            switch (step.kind) {
            case Kind::Split: {
                std::vector<Span> spans;
                if (step.fast) {
                    for (const std::string_view v : step.fast->split(p)) {
                        const auto b = static_cast<std::size_t>(v.data() - p.data());
                        spans.push_back({b, b + v.size(), true});
                    }
                } else if (step.regex) {
                    spans = cover(p, step.regex->findAll(p));
                } else if (!step.literal.empty()) {
                    spans = literalMatches(p, step.literal);
                } else {
                    spans.push_back({0, p.size(), false});
                }
                firstAtZero = applyBehavior(p, std::move(spans), step.behavior, step.invert, next);
                break;
            }
            case Kind::ByteLevel: {
                if (step.addPrefixSpace && !p.starts_with(' '))
                    p.insert(0, 1, ' ');
                if (step.useRegex) {
                    for (const std::string_view v : step.fast->split(p))
                        next.emplace_back(v);
                } else {
                    next.push_back(p);
                }
                if (step.spellBytes)
                    for (std::size_t k = before; k < next.size(); ++k) {
                        std::string spelled;
                        for (const char c : next[k])
                            spelled += byteLevelAlphabet().symbol(static_cast<unsigned char>(c));
                        next[k] = std::move(spelled);
                    }
                break;
            }
            case Kind::Metaspace: {
                std::string replaced;
                replaced.reserve(p.size() + 8);
                for (const char c : p) {
                    if (c == ' ')
                        replaced += step.replacement;
                    else
                        replaced += c;
                }
                if (!replaced.starts_with(step.replacement) &&
                    (step.prepend == Prepend::Always || (step.prepend == Prepend::First && pieceAtStart)))
                    replaced.insert(0, step.replacement);
                if (step.split)
                    firstAtZero = applyBehavior(replaced, literalMatches(replaced, step.replacement),
                                                Behavior::MergedWithNext, false, next);
                else
                    next.push_back(std::move(replaced));
                break;
            }
            case Kind::Digits:
                firstAtZero = applyBehavior(p, charMatches(p, unicode::isNumber),
                                            step.individualDigits ? Behavior::Isolated : Behavior::Contiguous,
                                            false, next);
                break;
            case Kind::Punctuation:
                firstAtZero = applyBehavior(p, charMatches(p, isPunctuation), step.behavior, false, next);
                break;
            case Kind::Whitespace:
                firstAtZero = applyBehavior(p, cover(p, whitespaceRegex().findAll(p)), Behavior::Removed, true, next);
                break;
            case Kind::WhitespaceSplit:
                firstAtZero = applyBehavior(p, charMatches(p, unicode::isWhitespace), Behavior::Removed, false, next);
                break;
            case Kind::Bert: {
                std::vector<std::string> words;
                firstAtZero = applyBehavior(p, charMatches(p, unicode::isWhitespace), Behavior::Removed, false, words);
                for (std::size_t w = 0; w < words.size(); ++w) {
                    const bool z = applyBehavior(words[w], charMatches(words[w], isPunctuation), Behavior::Isolated,
                                                 false, next);
                    if (w == 0)
                        firstAtZero = firstAtZero && z;
                }
                break;
            }
            }
            if (i == 0)
                nextAtStart = pieceAtStart && next.size() > before && firstAtZero;
            else if (before == 0 && next.size() > 0)
                nextAtStart = false;
        }
        atStart = nextAtStart;
        std::swap(pieces, next);
    }
    for (std::string& p : pieces)
        if (!p.empty())
            out.push_back(std::move(p));
}

} // namespace qpruner
