// Reading a SentencePiece ModelProto (see sentencepiece_model.h). Field numbers follow
// sentencepiece_model.proto; every field not listed there is skipped, whatever its wire type.
#include "tokenizer/sentencepiece_model.h"

#include "qpruner/error.h"
#include "tokenizer/protobuf_reader.h"

#include <algorithm>
#include <array>
#include <climits>

namespace qpruner {

namespace {

using Field = ProtobufReader::Field;

std::size_t offsetIn(std::string_view whole, std::string_view part)
{
    return static_cast<std::size_t>(part.data() - whole.data());
}

SentencePieceModel::Piece parsePiece(std::string_view whole, const Field& outer, const std::string& file,
                                     std::size_t index)
{
    const std::string name = "pieces[" + std::to_string(index) + "]";
    const std::string what = file + ": " + name;
    ProtobufReader reader(outer.asBytes(what), "tokenizer file " + file + " (" + name + ")",
                          offsetIn(whole, outer.bytes));
    SentencePieceModel::Piece piece;
    Field f;
    while (reader.next(f)) {
        switch (f.number) {
        case 1: piece.text = std::string(f.asBytes(what + ".piece")); break;
        case 2: piece.score = f.asFloat(what + ".score"); break;
        case 3: {
            const std::int32_t type = f.asInt32(what + ".type");
            if (type < 1 || type > 6)
                throw FormatError(what + " has unknown type " + std::to_string(type));
            piece.type = static_cast<SentencePieceModel::PieceType>(type);
            break;
        }
        default: break;
        }
    }
    return piece;
}

void parseTrainerSpec(std::string_view whole, const Field& outer, const std::string& file, SentencePieceModel& m)
{
    const std::string what = file + ": trainer_spec";
    ProtobufReader reader(outer.asBytes(what), "tokenizer file " + file + " (trainer_spec)",
                          offsetIn(whole, outer.bytes));
    Field f;
    while (reader.next(f)) {
        switch (f.number) {
        case 3: {
            const std::int32_t type = f.asInt32(what + ".model_type");
            if (type < 1 || type > 4)
                throw FormatError(what + ".model_type has unknown value " + std::to_string(type));
            m.modelType = static_cast<SentencePieceModel::ModelType>(type);
            break;
        }
        case 24: m.treatWhitespaceAsSuffix = f.asBool(what + ".treat_whitespace_as_suffix"); break;
        case 35: m.byteFallback = f.asBool(what + ".byte_fallback"); break;
        case 44: m.unkSurface = std::string(f.asBytes(what + ".unk_surface")); break;
        case 46: m.bosPiece = std::string(f.asBytes(what + ".bos_piece")); break;
        case 47: m.eosPiece = std::string(f.asBytes(what + ".eos_piece")); break;
        default: break;
        }
    }
    m.hasTrainerSpec = true;
}

void parseNormalizerSpec(std::string_view whole, const Field& outer, const std::string& file,
                         SentencePieceModel& m)
{
    const std::string what = file + ": normalizer_spec";
    ProtobufReader reader(outer.asBytes(what), "tokenizer file " + file + " (normalizer_spec)",
                          offsetIn(whole, outer.bytes));
    Field f;
    while (reader.next(f)) {
        switch (f.number) {
        case 1: m.normalizerName = std::string(f.asBytes(what + ".name")); break;
        case 2: m.precompiledCharsmap = std::string(f.asBytes(what + ".precompiled_charsmap")); break;
        case 3: m.addDummyPrefix = f.asBool(what + ".add_dummy_prefix"); break;
        case 4: m.removeExtraWhitespaces = f.asBool(what + ".remove_extra_whitespaces"); break;
        case 5: m.escapeWhitespaces = f.asBool(what + ".escape_whitespaces"); break;
        default: break;
        }
    }
    m.hasNormalizerSpec = true;
}

void parseDenormalizerSpec(std::string_view whole, const Field& outer, const std::string& file,
                           SentencePieceModel& m)
{
    const std::string what = file + ": denormalizer_spec";
    ProtobufReader reader(outer.asBytes(what), "tokenizer file " + file + " (denormalizer_spec)",
                          offsetIn(whole, outer.bytes));
    Field f;
    while (reader.next(f)) {
        if (f.number == 1)
            m.denormalizerName = std::string(f.asBytes(what + ".name"));
        else if (f.number == 2)
            m.denormalizerCharsmap = std::string(f.asBytes(what + ".precompiled_charsmap"));
    }
}

} // namespace

// "<0x41>" -> 0x41, or -1 when `piece` is not a byte piece name.
int bytePieceValue(std::string_view piece)
{
    if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>')
        return -1;
    int value = 0;
    for (const char c : piece.substr(3, 2)) {
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= c - '0';
        else if (c >= 'A' && c <= 'F')
            value |= c - 'A' + 10;
        else
            return -1;
    }
    return value;
}

SentencePieceModel SentencePieceModel::parse(std::string_view bytes, const std::string& file)
{
    SentencePieceModel m;
    ProtobufReader reader(bytes, "tokenizer file " + file);
    Field f;
    while (reader.next(f)) {
        switch (f.number) {
        case 1: m.pieces.push_back(parsePiece(bytes, f, file, m.pieces.size())); break;
        case 2: parseTrainerSpec(bytes, f, file, m); break;
        case 3: parseNormalizerSpec(bytes, f, file, m); break;
        case 4: parseDenormalizerSpec(bytes, f, file, m); break;
        default: break;
        }
    }
    // spm_train always writes both specs after the pieces, so a file cut at a field boundary shows up here.
    if (m.pieces.empty())
        throw FormatError("tokenizer file " + file + " has no pieces (not a SentencePiece model?)");
    if (!m.hasTrainerSpec)
        throw FileError("tokenizer file " + file + " ends before its trainer_spec (truncated file?) after " +
                        std::to_string(m.pieces.size()) + " pieces");
    if (!m.hasNormalizerSpec)
        throw FileError("tokenizer file " + file + " ends before its normalizer_spec (truncated file?)");
    return m;
}

void SentencePieceModel::checkSupported(const std::string& fileName) const
{
    const std::string where = "tokenizer file " + fileName;
    if (modelType == SentencePieceModel::ModelType::Unigram)
        throw FormatError(where + ": unigram models not supported (only BPE SentencePiece models)");
    if (modelType != SentencePieceModel::ModelType::Bpe)
        throw FormatError(where + ": model type " + std::to_string(static_cast<int>(modelType)) +
                          " not supported (only BPE SentencePiece models)");
    if (!denormalizerCharsmap.empty())
        throw FormatError(where + ": denormalization rule '" + denormalizerName + "' is not supported");
    if (treatWhitespaceAsSuffix)
        throw FormatError(where + ": treat_whitespace_as_suffix is not supported");
    if (pieces.size() > static_cast<std::size_t>(INT32_MAX))
        throw FormatError(where + ": too many pieces");

    int unknownCount = 0;
    std::array<bool, 256> bytesSeen{};
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        const auto& p = pieces[i];
        const std::string name = where + ": piece " + std::to_string(i);
        if (p.text.empty())
            throw FormatError(name + " is empty");
        if (p.type == PieceType::Unknown)
            ++unknownCount;
        if (p.type == PieceType::Byte) {
            if (!byteFallback)
                throw FormatError(name + " ('" + p.text + "') is a byte piece although byte_fallback is false");
            const int b = bytePieceValue(p.text);
            if (b < 0)
                throw FormatError(name + " ('" + p.text + "') is not a valid byte piece name");
            bytesSeen[b] = true;
        }
    }
    if (unknownCount != 1)
        throw FormatError(where + ": expected exactly one unknown piece, found " + std::to_string(unknownCount));
    if (byteFallback && std::count(bytesSeen.begin(), bytesSeen.end(), true) != 256)
        throw FormatError(where + ": byte_fallback is on but the 256 byte pieces <0x00>..<0xFF> are incomplete");
}

} // namespace qpruner
