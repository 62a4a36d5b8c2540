// Unicode character classes used by the GPT-2 / Llama-3 pre-tokenizer patterns (\p{L}, \p{N}, \s), which
// std::regex cannot express. The tables are generated (see unicode_tables.cpp).
#pragma once

namespace qpruner::unicode {

bool isLetter(char32_t codepoint);     // general category L*
bool isNumber(char32_t codepoint);     // general category N*
bool isWhitespace(char32_t codepoint); // the White_Space property

} // namespace qpruner::unicode
