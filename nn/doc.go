// Package nn holds mtbert's building blocks over autograd: named parameters, Linear,
// Embedding, LayerNorm and Dropout modules, the Adam and AdamW optimisers with PyTorch's exact
// update, gradient clipping, learning-rate schedules, and safetensors reading and writing.
//
// Parameter names are hierarchical and stable ("encoder.layer.0.output.dense.weight"): they are
// the keys of checkpoints, chosen to match Hugging Face BERT so that a saved model loads in
// transformers unchanged. A Scope hands out names; a Params collects them in creation order.
package nn
