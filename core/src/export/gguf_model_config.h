// A model's configuration as GGUF hyperparameter metadata, and back (torch-free), plus the GGUF tensor names.
// Architecture "llama" when every layer has the same shape (scalar head counts and FFN width, as llama.cpp's
// converter writes them), "deci" otherwise: llama.cpp's architecture for heterogeneous LLaMA models, which reads
// deci.attention.head_count, .head_count_kv and deci.feed_forward_length as per-layer i32 arrays and builds each
// layer at its own size (llama-model.cpp, LLM_ARCH_DECI). Keys written, with <a> the architecture:
//   general.architecture, <a>.context_length, <a>.embedding_length, <a>.block_count, <a>.feed_forward_length,
//   <a>.attention.head_count, <a>.attention.head_count_kv, <a>.attention.key_length, <a>.attention.value_length,
//   <a>.rope.dimension_count, <a>.rope.freq_base, <a>.attention.layer_norm_rms_epsilon, <a>.vocab_size,
//   and for Llama-3.1 RoPE scaling qpruner.rope_scaling.{factor,low_freq_factor,high_freq_factor,
//   original_context_length} (llama.cpp itself reads the rope_freqs.weight tensor the exporter writes).
// The other families are written as llama.cpp's architecture of the same name, homogeneous only (llama.cpp builds
// them with one shape for all layers; a pruned one is refused with the reason): "qwen2" (q/k/v bias), "qwen3"
// (attn_q_norm / attn_k_norm), "phi3" (fused attn_qkv, ffn_up holding gate then up), "gemma3" (post_attention_norm,
// post_ffw_norm, q/k norms, every norm stored as 1 + w, <a>.attention.sliding_window and rope.freq_base_swa;
// llama.cpp fixes its pattern at five sliding layers to one global). Mistral is "llama", as llama.cpp's converter
// writes it. "llama" and "deci" apply RoPE to adjacent pairs, so their q/k rows are stored in that interleaved
// order (ropeInterleaved); the others use the rotate-half layout our runtime uses.
// Reading also takes what tensors say: tied embeddings when there is no output.weight, q/k/v bias when
// blk.0.attn_q.bias exists.
#pragma once

#include <filesystem>
#include <string>

#include "export/gguf_file.h"
#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"

namespace qpruner::gguf {

// Whether `path` is a regular file starting with the GGUF magic.
bool isGgufFile(const std::filesystem::path& path);

// "llama", "deci", "qwen2", "qwen3", "phi3" or "gemma3" (see above). Throws ConfigError for a heterogeneous model of
// another family than LLaMA's, and for what llama.cpp's architecture cannot express (Gemma layer patterns other
// than 5:1, a query scale other than head_dim^-0.5).
std::string architectureFor(const ModelConfig& config);
// Whether `architecture` stores q/k rows with RoPE pairs adjacent (llama, deci) rather than in halves (the others).
bool ropeInterleaved(const std::string& architecture);

// Sets general.architecture and the hyperparameters. Throws ConfigError as architectureFor.
void writeModelConfig(GgufWriter& writer, const ModelConfig& config);

// The configuration of a GGUF model written by writeModelConfig or by llama.cpp's converter (architecture
// "llama", "deci" or "qwen2"). bos/eos come from tokenizer.ggml.bos_token_id / eos_token_id (1 and 2 when absent). Throws
// FormatError naming the file and key for another architecture, a missing or ill-typed key, an array whose
// length is not block_count, or shapes that fail ModelConfig::validate().
ModelConfig readModelConfig(const GgufFile& file);

// GGUF tensor names: "token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight",
// "blk.<l>.attn_norm.weight", "blk.<l>.ffn_norm.weight", and per linear "blk.<l>.attn_q" ... "blk.<l>.ffn_down"
// (add ".weight" / ".bias").
std::string linearTensorPrefix(int layer, LinearModule m);
const char* ggufModuleName(LinearModule m); // "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"
std::string layerTensorName(int layer, const std::string& part); // "blk.<l>.<part>"

} // namespace qpruner::gguf
