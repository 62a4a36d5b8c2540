// Protobuf wire-format reader (see protobuf_reader.h). Every read is bounds-checked: the input is a file
// from disk and may be cut anywhere or be something else entirely.
#include "tokenizer/protobuf_reader.h"

#include "qpruner/error.h"

#include <bit>

namespace qpruner {

namespace {

constexpr int kMaxGroupDepth = 64; // deeper nesting is not a SentencePiece model; stops stack exhaustion

const char* wireTypeName(ProtobufReader::WireType type)
{
    switch (type) {
    case ProtobufReader::WireType::Varint: return "varint";
    case ProtobufReader::WireType::Fixed64: return "fixed64";
    case ProtobufReader::WireType::Bytes: return "length-delimited";
    case ProtobufReader::WireType::StartGroup: return "group";
    case ProtobufReader::WireType::Fixed32: return "fixed32";
    }
    return "?";
}

[[noreturn]] void wrongType(const ProtobufReader::Field& f, const std::string& what, const char* expected)
{
    throw FormatError(what + " (field " + std::to_string(f.number) + " at byte " + std::to_string(f.offset) +
                      ") has wire type " + wireTypeName(f.type) + ", expected " + expected);
}

} // namespace

std::int32_t ProtobufReader::Field::asInt32(const std::string& what) const
{
    if (type != WireType::Varint)
        wrongType(*this, what, "varint");
    // int32 and enum values are sign-extended to 64 bits on the wire; the low 32 bits are the value.
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(integer));
}

bool ProtobufReader::Field::asBool(const std::string& what) const
{
    if (type != WireType::Varint)
        wrongType(*this, what, "varint");
    return integer != 0;
}

float ProtobufReader::Field::asFloat(const std::string& what) const
{
    if (type != WireType::Fixed32)
        wrongType(*this, what, "fixed32");
    return std::bit_cast<float>(static_cast<std::uint32_t>(integer));
}

std::string_view ProtobufReader::Field::asBytes(const std::string& what) const
{
    if (type != WireType::Bytes)
        wrongType(*this, what, "length-delimited");
    return bytes;
}

ProtobufReader::ProtobufReader(std::string_view data, std::string context, std::size_t baseOffset)
    : data_(data), context_(std::move(context)), base_(baseOffset)
{
}

void ProtobufReader::need(std::size_t count, const char* what) const
{
    if (count > data_.size() - pos_)
        throw FileError(context_ + " is truncated: " + what + " at byte " + std::to_string(base_ + pos_) +
                        " needs " + std::to_string(count) + " bytes but only " +
                        std::to_string(data_.size() - pos_) + " remain");
}

std::uint64_t ProtobufReader::readVarint(const char* what)
{
    std::uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        need(1, what);
        const auto byte = static_cast<unsigned char>(data_[pos_++]);
        value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0)
            return value;
    }
    throw FormatError(context_ + ": malformed varint (" + what + ") longer than 10 bytes at byte " +
                      std::to_string(base_ + pos_));
}

void ProtobufReader::skipGroup(std::uint32_t number)
{
    // Groups are obsolete but legal; skip nested fields until the matching end-group tag.
    int depth = 1;
    while (depth > 0) {
        if (pos_ >= data_.size())
            throw FileError(context_ + " is truncated: group " + std::to_string(number) + " is not closed");
        const std::uint64_t tag = readVarint("field tag");
        switch (tag & 7) {
        case 0: readVarint("varint field"); break;
        case 1: need(8, "fixed64 field"); pos_ += 8; break;
        case 2: {
            const std::uint64_t len = readVarint("field length");
            need(len, "length-delimited field");
            pos_ += len;
            break;
        }
        case 3:
            if (++depth > kMaxGroupDepth)
                throw FormatError(context_ + ": groups nested too deeply at byte " + std::to_string(base_ + pos_));
            break;
        case 4: --depth; break;
        case 5: need(4, "fixed32 field"); pos_ += 4; break;
        default:
            throw FormatError(context_ + ": invalid wire type " + std::to_string(tag & 7) + " at byte " +
                              std::to_string(base_ + pos_));
        }
    }
}

bool ProtobufReader::next(Field& field)
{
    if (pos_ >= data_.size())
        return false;
    field = Field{};
    field.offset = base_ + pos_;
    const std::uint64_t tag = readVarint("field tag");
    const std::uint64_t number = tag >> 3;
    if (number == 0 || number > 0x1FFFFFFF)
        throw FormatError(context_ + ": invalid field number " + std::to_string(number) + " at byte " +
                          std::to_string(field.offset) + " (not a protobuf message?)");
    field.number = static_cast<std::uint32_t>(number);
    switch (tag & 7) {
    case 0:
        field.type = WireType::Varint;
        field.integer = readVarint("varint field");
        break;
    case 1: {
        field.type = WireType::Fixed64;
        need(8, "fixed64 field");
        std::uint64_t v = 0;
        for (int i = 7; i >= 0; --i)
            v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
        field.integer = v;
        pos_ += 8;
        break;
    }
    case 2: {
        field.type = WireType::Bytes;
        const std::uint64_t len = readVarint("field length");
        need(len, "length-delimited field");
        field.bytes = data_.substr(pos_, len);
        pos_ += len;
        break;
    }
    case 3: {
        field.type = WireType::StartGroup;
        const std::size_t start = pos_;
        skipGroup(field.number);
        field.bytes = data_.substr(start, pos_ - start);
        break;
    }
    case 5: {
        field.type = WireType::Fixed32;
        need(4, "fixed32 field");
        std::uint32_t v = 0;
        for (int i = 3; i >= 0; --i)
            v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
        field.integer = v;
        pos_ += 4;
        break;
    }
    default:
        throw FormatError(context_ + ": invalid wire type " + std::to_string(tag & 7) + " for field " +
                          std::to_string(number) + " at byte " + std::to_string(field.offset) +
                          " (not a protobuf message?)");
    }
    return true;
}

} // namespace qpruner
