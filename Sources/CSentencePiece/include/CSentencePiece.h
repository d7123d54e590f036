// Placeholder until the SentencePiece shim lands.
#pragma once
#ifdef __cplusplus
extern "C" {
#endif
int csp_placeholder(void);
#ifdef __cplusplus
}
#endif
