package bert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Config is a BERT configuration as transformers.BertConfig writes it to config.json. Fields
// absent from the file take BertConfig's defaults (BERT-base, uncased vocabulary).
type Config struct {
	VocabSize                 int     `json:"vocab_size"`
	HiddenSize                int     `json:"hidden_size"`
	NumHiddenLayers           int     `json:"num_hidden_layers"`
	NumAttentionHeads         int     `json:"num_attention_heads"`
	IntermediateSize          int     `json:"intermediate_size"`
	HiddenAct                 string  `json:"hidden_act"`
	HiddenDropoutProb         float64 `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64 `json:"attention_probs_dropout_prob"`
	MaxPositionEmbeddings     int     `json:"max_position_embeddings"`
	TypeVocabSize             int     `json:"type_vocab_size"`
	InitializerRange          float64 `json:"initializer_range"`
	LayerNormEps              float64 `json:"layer_norm_eps"`
	PadTokenID                int     `json:"pad_token_id"`
	PositionEmbeddingType     string  `json:"position_embedding_type"`
	// Quantization is "int8" for a checkpoint written by `mtbert quantize` (Model.QuantizeInt8):
	// the encoder's linear weights are stored as NAME.weight_int8 (I8, (out, in)) and
	// NAME.weight_scale (F32, (out)), W ≈ scale[j]·q[j][p], instead of NAME.weight; "" for float
	// weights. transformers ignores the field, and fails on the missing NAME.weight rather than
	// loading the int8 values as floats.
	Quantization string `json:"mtbert_quantization,omitempty"`
}

// DefaultConfig returns transformers.BertConfig()'s defaults: BERT-base with the uncased
// 30,522-token vocabulary.
func DefaultConfig() Config {
	return Config{
		VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
		IntermediateSize: 3072, HiddenAct: "gelu", HiddenDropoutProb: 0.1,
		AttentionProbsDropoutProb: 0.1, MaxPositionEmbeddings: 512, TypeVocabSize: 2,
		InitializerRange: 0.02, LayerNormEps: 1e-12, PositionEmbeddingType: "absolute",
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings}, {"type_vocab_size", c.TypeVocabSize},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("%s = %d, must be positive", p.name, p.v)
		}
		if p.v > MaxConfigDim {
			return fmt.Errorf("%s %d is more than %d, the largest dimension mtbert accepts", p.name, p.v, MaxConfigDim)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	switch c.HiddenAct {
	case "gelu", "gelu_new", "gelu_pytorch_tanh":
	default:
		return fmt.Errorf("hidden_act %q is not supported (want gelu, gelu_new or gelu_pytorch_tanh)", c.HiddenAct)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"hidden_dropout_prob", c.HiddenDropoutProb}, {"attention_probs_dropout_prob", c.AttentionProbsDropoutProb}} {
		if p.v < 0 || p.v >= 1 {
			return fmt.Errorf("%s = %g, must be in [0, 1)", p.name, p.v)
		}
	}
	if !(c.LayerNormEps > 0) {
		return fmt.Errorf("layer_norm_eps = %g, must be positive", c.LayerNormEps)
	}
	if c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize {
		return fmt.Errorf("pad_token_id %d outside vocabulary of %d", c.PadTokenID, c.VocabSize)
	}
	if c.Quantization != "" && c.Quantization != Int8 {
		return fmt.Errorf("mtbert_quantization %q is not supported (want %q or none)", c.Quantization, Int8)
	}
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return fmt.Errorf("position_embedding_type %q is not supported (only absolute)", c.PositionEmbeddingType)
	}
	return c.checkBytes()
}

// DefaultMaxModelBytes is the default of MaxModelBytes: 4 GiB, about three times BERT-large's
// 1.34 GB of float32 parameters.
const DefaultMaxModelBytes = 4 << 30

// MaxModelBytes bounds the float32 bytes of a model's parameters (encoder, pooler and MLM head
// counted, and a multitask checkpoint's heads): Validate refuses a config above it before
// anything is allocated, and a pytorch_model.bin load is budgeted from it. The commands that
// load models set it from -max-model-bytes.
var MaxModelBytes int64 = DefaultMaxModelBytes

// MaxConfigDim bounds every dimension of a config (vocab_size, hidden_size, ...) on its own,
// before the products are formed.
const MaxConfigDim = 1 << 26

// ParamBytes returns the float32 bytes of every parameter the config can give a model: the
// encoder, the pooler and an MLM head (the upper bound a load is budgeted from). The dimensions
// must be positive and at most MaxConfigDim (Validate checks); the result may exceed int64
// range only as +Inf in float64, so it is returned as float64.
func (c Config) ParamBytes() float64 {
	v, h, i := float64(c.VocabSize), float64(c.HiddenSize), float64(c.IntermediateSize)
	emb := (v+float64(c.MaxPositionEmbeddings)+float64(c.TypeVocabSize))*h + 2*h
	layer := 4*(h*h+h) + 2*h + (h*i + i) + (i*h + h) + 2*h
	pooler := h*h + h
	mlm := h*h + h + 2*h + v
	return 4 * (emb + float64(c.NumHiddenLayers)*layer + pooler + mlm)
}

// checkBytes refuses a config whose parameters exceed MaxModelBytes, naming the field that
// contributes most.
func (c Config) checkBytes() error {
	total := c.ParamBytes()
	if total <= float64(MaxModelBytes) {
		return nil
	}
	h := float64(c.HiddenSize)
	terms := []struct {
		name string
		v    int
		b    float64
	}{
		{"vocab_size", c.VocabSize, 4 * float64(c.VocabSize) * h},
		{"max_position_embeddings", c.MaxPositionEmbeddings, 4 * float64(c.MaxPositionEmbeddings) * h},
		{"type_vocab_size", c.TypeVocabSize, 4 * float64(c.TypeVocabSize) * h},
		{"num_hidden_layers", c.NumHiddenLayers, 4 * float64(c.NumHiddenLayers) * (4*h*h + 2*h*float64(c.IntermediateSize))},
		{"hidden_size", c.HiddenSize, 4 * (2 + float64(c.NumHiddenLayers)*4) * h * h},
	}
	big := terms[0]
	for _, t := range terms[1:] {
		if t.b > big.b {
			big = t
		}
	}
	return fmt.Errorf("%s %d (with hidden_size %d, intermediate_size %d, num_hidden_layers %d) gives %.4g bytes of float32 parameters, more than the limit of %d bytes (raise it with -max-model-bytes)",
		big.name, big.v, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, total, MaxModelBytes)
}

// ParseConfig reads a config.json body; unknown keys (transformers writes many) are ignored.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadConfig reads dir/config.json (or the file itself when path is a file).
func LoadConfig(path string) (Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// JSON returns the config.json body that transformers reads back as a BertConfig.
func (c Config) JSON() []byte {
	type out struct {
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
		Config
	}
	b, err := json.MarshalIndent(out{[]string{"BertModel"}, "bert", c}, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
