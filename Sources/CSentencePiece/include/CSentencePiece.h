// A small C interface over sentencepiece::SentencePieceProcessor (Debian's
// libsentencepiece-dev), so Swift can use it without C++ interop.
//
// Rules of this boundary:
// - Every function returns a status code (CSP_OK on success). Nothing throws
//   across it and nothing exits: the shim catches every C++ exception.
// - On failure, if `error_message` is not NULL, *error_message receives a
//   NUL-terminated message allocated by the shim; the caller frees it with
//   csp_free. On success *error_message is left untouched.
// - Inputs are (pointer, length) pairs: text may contain NUL bytes.
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
/// The output buffer is too small; *count holds the number of ids needed.
#define CSP_BUFFER_TOO_SMALL 100
/// A C++ exception (for example std::bad_alloc) was caught in the shim.
#define CSP_EXCEPTION 101
/// A NULL pointer or otherwise invalid argument was passed to the shim.
#define CSP_INVALID_ARGUMENT 102

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

/// Encodes `length` bytes of UTF-8 `text` into piece ids (the model's own
/// normalization applies). Writes at most `capacity` ids to `ids` and their
/// number to *count; if `capacity` is too small, returns CSP_BUFFER_TOO_SMALL
/// with the needed number in *count and writes nothing. Thread-safe: encoding
/// only reads the processor.
int csp_processor_encode(const csp_processor *processor,
                         const char *text, size_t length,
                         int32_t *ids, size_t capacity, size_t *count,
                         char **error_message);

/// Frees memory allocated by the shim (error messages).
void csp_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif  // CSENTENCEPIECE_H
