// Placeholder until the SentencePiece shim lands.
#pragma once
int csp_placeholder(void);
