// Dimension letters used in every shape comment of the kernels and the model:
//
//   B  batch (inputs)              N  decoder rows (B × beams)
//   S  source length (encoder)     T  target length (decoder tokens in one call)
//   D  d_model                     H  heads          K  d_kv (so H·K is the attention width)
//   F  d_ff                        V  vocabulary (config.vocab_size)
//   L  key length seen by an attention call (cache length + T, or S for cross-attention)
//
// Buffers are row-major; a shape comment `// (N, T, D)` names the dimensions of a buffer from
// slowest to fastest. Weights are used as stored by PyTorch's nn.Linear, `[out, in]`.
