// extern "C" shim over sentencepiece::SentencePieceProcessor. See CSentencePiece.h
// for the rules of the boundary: status codes, caller frees, no exceptions escape.
#include "CSentencePiece.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>

struct csp_processor {
    sentencepiece::SentencePieceProcessor processor;
};

namespace {

// Copies `message` into a malloc'd C string for the caller (who frees it with
// csp_free). If even that allocation fails, the caller gets no message.
void set_error(char **error_message, const std::string &message) {
    if (error_message == nullptr) return;
    char *copy = static_cast<char *>(std::malloc(message.size() + 1));
    if (copy == nullptr) return;
    std::memcpy(copy, message.data(), message.size());
    copy[message.size()] = '\0';
    *error_message = copy;
}

int from_status(const sentencepiece::util::Status &status, char **error_message) {
    if (status.ok()) return CSP_OK;
    std::string message = status.error_message();
    if (message.empty()) message = status.ToString();
    set_error(error_message, message);
    return static_cast<int>(status.code());
}

int from_exception(char **error_message) {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        set_error(error_message, "out of memory");
    } catch (const std::exception &error) {
        set_error(error_message, std::string("exception: ") + error.what());
    } catch (...) {
        set_error(error_message, "unknown C++ exception");
    }
    return CSP_EXCEPTION;
}

}  // namespace

extern "C" int csp_processor_load(const void *serialized, size_t length,
                                  csp_processor **out, char **error_message) {
    if (out == nullptr || (serialized == nullptr && length > 0)) {
        set_error(error_message, "invalid argument");
        return CSP_INVALID_ARGUMENT;
    }
    *out = nullptr;
    try {
        // Owned until returned: LoadFromSerializedProto can throw (darts-clone refuses a model with an empty
        // piece by throwing), and the processor, holding the parsed model, must not leak then either.
        std::unique_ptr<csp_processor> handle(new csp_processor());
        const char *bytes = static_cast<const char *>(serialized);
        const auto status = handle->processor.LoadFromSerializedProto(
            absl::string_view(bytes == nullptr ? "" : bytes, length));
        const int code = from_status(status, error_message);
        if (code != CSP_OK) return code;
        *out = handle.release();
        return CSP_OK;
    } catch (...) {
        return from_exception(error_message);
    }
}

extern "C" void csp_processor_free(csp_processor *processor) {
    try {
        delete processor;
    } catch (...) {
        // A destructor that throws would be a library bug; never let it cross into Swift.
    }
}

extern "C" int csp_processor_piece_size(const csp_processor *processor, int32_t *size) {
    if (processor == nullptr || size == nullptr) return CSP_INVALID_ARGUMENT;
    try {
        *size = static_cast<int32_t>(processor->processor.GetPieceSize());
        return CSP_OK;
    } catch (...) {
        return from_exception(nullptr);
    }
}

extern "C" int csp_processor_piece(const csp_processor *processor, int32_t id,
                                   const char **text, size_t *length, float *score, int32_t *kind) {
    if (processor == nullptr || text == nullptr || length == nullptr || score == nullptr ||
        kind == nullptr) {
        return CSP_INVALID_ARGUMENT;
    }
    try {
        const auto &sp = processor->processor;
        if (id < 0 || id >= sp.GetPieceSize()) return CSP_INVALID_ARGUMENT;
        const std::string &piece = sp.IdToPiece(id);
        *text = piece.data();
        *length = piece.size();
        *score = sp.GetScore(id);
        if (sp.IsUnknown(id)) {
            *kind = CSP_PIECE_UNKNOWN;
        } else if (sp.IsControl(id)) {
            *kind = CSP_PIECE_CONTROL;
        } else if (sp.IsUnused(id)) {
            *kind = CSP_PIECE_UNUSED;
        } else if (sp.IsByte(id)) {
            *kind = CSP_PIECE_BYTE;
        } else {
            *kind = CSP_PIECE_NORMAL;
        }
        return CSP_OK;
    } catch (...) {
        return from_exception(nullptr);
    }
}

namespace {

// Pulls sentences from the caller's callback. SentencePiece asks done() before each value(); a source
// error ends the iteration and is reported through status(), which makes Train return it.
class CallbackSentences : public sentencepiece::SentenceIterator {
  public:
    CallbackSentences(csp_sentence_source source, void *context) : source_(source), context_(context) { Next(); }
    bool done() const override { return done_; }
    void Next() override {
        const char *text = nullptr;
        size_t length = 0;
        int got = source_(context_, &text, &length);
        if (got == 1 && (text != nullptr || length == 0)) {
            value_.assign(text == nullptr ? "" : text, length);
        } else {
            done_ = true;
            if (got != 0) failed_ = true;
        }
    }
    const std::string &value() const override { return value_; }
    sentencepiece::util::Status status() const override {
        if (failed_) return sentencepiece::util::Status(sentencepiece::util::StatusCode::kAborted, "reading the text failed");
        return sentencepiece::util::Status();
    }

  private:
    csp_sentence_source source_;
    void *context_;
    std::string value_;
    bool done_ = false;
    bool failed_ = false;
};

}  // namespace

extern "C" int csp_train(const char *const *keys, const char *const *values, size_t count,
                         csp_sentence_source source, void *context,
                         void **model, size_t *model_length, char **error_message) {
    if (model == nullptr || model_length == nullptr || source == nullptr || (count > 0 && (keys == nullptr || values == nullptr))) {
        set_error(error_message, "invalid argument");
        return CSP_INVALID_ARGUMENT;
    }
    *model = nullptr;
    *model_length = 0;
    try {
        std::unordered_map<std::string, std::string> flags;
        for (size_t i = 0; i < count; i++) {
            if (keys[i] == nullptr || values[i] == nullptr) {
                set_error(error_message, "invalid argument");
                return CSP_INVALID_ARGUMENT;
            }
            flags[keys[i]] = values[i];
        }
        CallbackSentences sentences(source, context);
        std::string serialized;
        int status = from_status(sentencepiece::SentencePieceTrainer::Train(flags, &sentences, &serialized), error_message);
        if (status != CSP_OK) return status;
        void *copy = std::malloc(serialized.size() == 0 ? 1 : serialized.size());
        if (copy == nullptr) {
            set_error(error_message, "out of memory");
            return CSP_EXCEPTION;
        }
        std::memcpy(copy, serialized.data(), serialized.size());
        *model = copy;
        *model_length = serialized.size();
        return CSP_OK;
    } catch (...) {
        return from_exception(error_message);
    }
}

extern "C" void csp_free(void *pointer) { std::free(pointer); }
