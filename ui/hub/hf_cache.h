// The user's Hugging Face hub cache as huggingface_hub lays it out, read without Python: where it is, and
// which model repos it holds (revision, snapshot directory, size on disk, architecture, completeness).
// Layout of one repo: models--ORG--NAME/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>,
// refs/<branch> holding a commit}. Plain functions: the scan runs on a worker thread.
#pragma once

#include <QList>
#include <QMetaType>
#include <QString>
#include <QStringList>

namespace qpruner::ui {

// One cached model repo, as the start page lists it.
struct HfCachedModel {
    QString repoId;       // "ORG/NAME" ("NAME" for repos without an organisation)
    QString repoDir;      // .../models--ORG--NAME
    QString revision;     // commit of the snapshot shown (refs/main's, else the newest snapshot's)
    QString refName;      // "main" when refs/main chose the snapshot; empty when the newest one was taken
    QString snapshotDir;  // what the studio opens (config.json + *.safetensors); empty when there is none
    qint64 sizeOnDisk = 0;// bytes of the distinct blobs the snapshot links to, each blob counted once
    int fileCount = 0;    // files in the snapshot (links that resolve)
    qint64 partialBytes = 0; // bytes in blobs/*.incomplete (an interrupted download)

    // From config.json, when it can be read.
    QString architecture; // "architectures"[0], e.g. "LlamaForCausalLM"
    QString modelType;    // "model_type", e.g. "llama"
    int hiddenSize = 0;
    int numLayers = 0;

    // Complete: config.json present, every shard named by model.safetensors.index.json (or a
    // model.safetensors) present, no *.incomplete blob. Otherwise `problem` says what is wrong.
    bool complete = false;
    QString problem;

    // "LlamaForCausalLM (llama, 2 layers, hidden 16)", or what is known of it.
    QString architectureSummary() const;
};

class HfCache {
public:
    // The hub cache directory, resolved as huggingface_hub does: $HF_HUB_CACHE, else the legacy
    // $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
    // ~/.cache/huggingface/hub. A leading "~/" is expanded; empty variables count as unset. The directory
    // need not exist.
    static QString defaultCacheDir();
    // huggingface_hub's home: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (the token
    // file of `huggingface-cli login` lives there).
    static QString hfHomeDir();

    // "ORG/NAME" -> "models--ORG--NAME", and back (empty when `folder` is not a model repo folder).
    static QString repoFolderName(const QString& repoId);
    static QString repoIdFromFolder(const QString& folder);
    // True for "NAME" and "ORG/NAME" made of letters, digits, '-', '_' and '.' (no "..", no leading '-'/'.').
    static bool isValidRepoId(const QString& repoId);

    // One entry per models--* folder of `cacheDir`, sorted by repo id; datasets--* and spaces--* are skipped.
    // Never throws: an unreadable repo becomes an entry with `problem` set. Empty when the directory is absent.
    static QList<HfCachedModel> scan(const QString& cacheDir);
    // The entry for one models--ORG--NAME folder.
    static HfCachedModel scanRepo(const QString& repoDir);
};

} // namespace qpruner::ui

Q_DECLARE_METATYPE(qpruner::ui::HfCachedModel)
