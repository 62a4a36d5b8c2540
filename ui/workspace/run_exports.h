// What File > Export writes for a run, as plain functions (the main window runs them off the UI thread):
// trials as CSV, the map and config as JSON, and llama.cpp's llama-quantize command for a map. Every file is
// written whole or not at all (QSaveFile); errors name the file.
#pragma once

#include <QByteArray>
#include <QString>

#include <vector>

#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"
#include "qpruner/store.h"

namespace qpruner::ui {

// RFC 4180 CSV, one row per trial in the given order, header first. Columns: number, state, source,
// objective, memory_bytes, budgeted_bytes, linear_bits_per_weight (from metrics.memory, empty when absent),
// seconds_quantize, seconds_evaluate, seconds_surrogate, retry_of, finish_order, worker, started_at,
// finished_at, error, encoding, metrics (compact JSON), map (compact JSON). Numbers in the C locale with
// round-trip precision; "" for absent values.
QByteArray trialsCsv(const std::vector<store::TrialRecord>& trials);

// A shell command line (with backslash continuations and a comment header) that makes llama.cpp's
// llama-quantize reproduce `map` on the model's f16 GGUF; throws ConfigError as llamaQuantizeArgs does.
QString llamaQuantizeScript(const PrecisionMap& map, const ModelConfig& config, const QString& title);

// Writes `bytes` to `path` atomically. False with a message naming the file on failure.
bool writeFileAtomically(const QString& path, const QByteArray& bytes, QString* error);

// Reads every trial of the run (maps and metrics included) and writes trialsCsv() to `path`.
bool exportTrialsCsv(const QString& dbPath, qint64 runId, const QString& path, QString* error);

} // namespace qpruner::ui
