// A small C interface over sentencepiece::SentencePieceProcessor (Debian's
// libsentencepiece-dev), so Swift can use it without C++ interop: it loads and
// validates a model and exposes its vocabulary (pieces, scores, kinds).
//
// Rules of this boundary:
// - Every function returns a status code (CSP_OK on success). Nothing throws
//   across it and nothing exits: the shim catches every C++ exception.
// - On failure, if `error_message` is not NULL, *error_message receives a
//   NUL-terminated message allocated by the shim; the caller frees it with
//   csp_free. On success *error_message is left untouched.
// - Strings cross as (pointer, length) pairs.
#ifndef CSENTENCEPIECE_H
#define CSENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status codes. Values 1...16 are sentencepiece::util::StatusCode values
/// passed through unchanged (3 = invalid argument, 5 = not found, 13 = internal, ...).
#define CSP_OK 0
/// A C++ exception (for example std::bad_alloc) was caught in the shim.
#define CSP_EXCEPTION 100
/// A NULL pointer, an id out of range or another invalid argument.
#define CSP_INVALID_ARGUMENT 101

/// Opaque handle to a loaded SentencePiece model.
typedef struct csp_processor csp_processor;

/// Loads a model from the bytes of a serialized ModelProto (the content of a
/// `.model` file). On success *out receives a handle to free with csp_processor_free.
int csp_processor_load(const void *serialized, size_t length,
                       csp_processor **out, char **error_message);

/// Frees a handle from csp_processor_load. NULL is allowed.
void csp_processor_free(csp_processor *processor);

/// Number of pieces in the loaded model.
int csp_processor_piece_size(const csp_processor *processor, int32_t *size);

/// Piece kinds reported by csp_processor_piece (SentencePiece's Is* predicates;
/// SentencePiece's API has no predicate for user-defined pieces, which report NORMAL).
#define CSP_PIECE_NORMAL 1
#define CSP_PIECE_UNKNOWN 2
#define CSP_PIECE_CONTROL 3
#define CSP_PIECE_UNUSED 5
#define CSP_PIECE_BYTE 6

/// The piece with id `id` (0 <= id < piece size): its UTF-8 bytes, score and kind.
/// *text points into the processor and stays valid until csp_processor_free; it is not
/// NUL-terminated and must not be freed.
int csp_processor_piece(const csp_processor *processor, int32_t id,
                        const char **text, size_t *length, float *score, int32_t *kind);

/// Supplies training sentences to csp_train, one per call: returns 1 with *text / *length set to a
/// sentence (UTF-8, valid until the next call), 0 when there are no more, and -1 to stop training
/// with an error the caller reports itself.
typedef int (*csp_sentence_source)(void *context, const char **text, size_t *length);

/// Trains a SentencePiece model with sentencepiece::SentencePieceTrainer from `count` trainer flags
/// (`keys[i]` = `values[i]`, the names of spm_train's flags without dashes) over the sentences
/// `source` gives. On success *model receives the serialized ModelProto (free it with csp_free)
/// and *model_length its size; nothing is written to disk.
int csp_train(const char *const *keys, const char *const *values, size_t count,
              csp_sentence_source source, void *context,
              void **model, size_t *model_length, char **error_message);

/// Frees memory allocated by the shim (error messages, trained models).
void csp_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif  // CSENTENCEPIECE_H
