// Tokenizers as GGUF vocabulary metadata (the tokenizer.ggml.* keys llama.cpp's llama_vocab::load reads), and
// back. Torch-free.
//   SentencePiece .model        -> tokenizer.ggml.model "llama": tokens (piece text with U+2581 for spaces, as
//                                  stored), scores, token_type (SentencePiece's piece types 1..6, which are
//                                  llama.cpp's LLAMA_TOKEN_TYPE_* values), bos/eos/unknown/padding ids,
//                                  add_bos_token true, add_eos_token false, add_space_prefix from the
//                                  normalizer's add_dummy_prefix.
//   llama2.c tokenizer.bin      -> "llama" as well: llama2.c's export replaced U+2581 by ' ' and wrote BOS/EOS as
//                                  "\n<s>\n" / "\n</s>\n"; both are undone; <0xNN> pieces are BYTE, id 0 UNKNOWN,
//                                  BOS/EOS CONTROL, the rest NORMAL with the file's scores.
//   tokenizer.json (byte-level) -> "gpt2": tokens by id (vocab + added tokens), token_type (added special tokens
//                                  CONTROL, other added tokens USER_DEFINED, the rest NORMAL), merges as
//                                  "left right" strings in rank order, tokenizer.ggml.pre from the pre-tokenizer
//                                  regexes ("llama-bpe" for Llama-3's, "qwen2" for Qwen2's / Qwen3's, "gpt-2" for
//                                  GPT-2's, "deepseek-v3" for DeepSeek-V3's three splits, else "default" with a
//                                  warning: llama.cpp would then split words differently).
//   tokenizer.json (SentencePiece-style BPE: no ByteLevel, e.g. Mistral, Gemma 3)
//                               -> "llama": tokens by id with U+2581 as stored, scores minus the rank of the first
//                                  merge producing each token (so llama.cpp's SPM merging follows the BPE ranks),
//                                  <0xNN> pieces BYTE, unk_token UNKNOWN, added special tokens CONTROL, other added
//                                  tokens USER_DEFINED, add_space_prefix when the normalizer starts with
//                                  Prepend U+2581 (or a Metaspace pre-tokenizer prepends one).
// When the model's embedding has more rows than the tokenizer has tokens, the vocabulary is padded with
// "[PAD<id>]" tokens of type UNUSED (as llama.cpp's converter does), with a warning; fewer rows is an error, except
// where only added (control / user-defined) tokens lie past the last row (Gemma 3's <image_soft_token>): those are
// left out, with a warning.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "export/gguf_file.h"
#include "qpruner/tokenizer.h"

namespace qpruner::gguf {

// llama.cpp's llama_token_type values.
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct GgufVocab {
    std::string model;                 // "llama" or "gpt2"
    std::string pre;                   // tokenizer.ggml.pre ("gpt2" vocabularies only; empty otherwise)
    std::vector<std::string> tokens;
    std::vector<float> scores;         // "llama" only (empty for "gpt2")
    std::vector<int32_t> types;        // TokenType values
    std::vector<std::string> merges;   // "gpt2" only
    int32_t bosId = -1, eosId = -1, unknownId = -1, paddingId = -1; // -1: not written
    bool addBos = true;
    bool addEos = false;
    bool addSpacePrefix = true;        // "llama" only
    std::vector<std::string> warnings; // padding, unknown pre-tokenizer, ...
};

// The vocabulary of the tokenizer file `path` (as loadTokenizer() accepts: .model, .bin, tokenizer.json or a
// directory holding one), padded to `modelVocabSize` rows. Throws FileError / FormatError as loadTokenizer, and
// ConfigError when the tokenizer has more tokens than the model's embedding has rows (naming both counts).
GgufVocab vocabFromTokenizerFile(const std::filesystem::path& path, int32_t modelVocabSize);

// Sets the tokenizer.ggml.* keys of `vocab` on `writer`.
void writeVocab(GgufWriter& writer, const GgufVocab& vocab);
// Reads them back. Throws FormatError naming the file and key when a key is missing or has the wrong type, or
// the arrays' lengths disagree.
GgufVocab readVocab(const GgufFile& file);

// A tokenizer for a GGUF file's "llama" vocabulary (a SentencePiece BPE model rebuilt from tokens, scores and
// types, normalizing as llama.cpp does: optional space prefix, spaces as U+2581, no whitespace collapsing), so
// `qpruner eval-ppl model.gguf` needs no separate tokenizer file. Throws FormatError naming the file for other
// vocabulary kinds ("gpt2": pass the tokenizer.json with --tokenizer).
std::unique_ptr<Tokenizer> tokenizerFromGguf(const GgufFile& file);

} // namespace qpruner::gguf
