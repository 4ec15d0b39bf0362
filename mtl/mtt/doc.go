// Package mtt reads and writes the checkpoint layout of MT-Clinical BERT's reference code
// (multitasking_transformers, Mulyar & McInnes 2020), the layout of its released model
// mt_clinical_bert_8_tasks:
//
//	config.json, vocab.txt      a Hugging Face BertModel ...
//	pytorch_model.bin           ... its state dict (no "bert." prefix), legacy or zip torch format
//	{HeadClass}_{task}.json     per head: head_name, head_task, labels, hidden_size, hidden_dropout_prob
//	{HeadClass}_{task}.pt       per head: torch.save of its state dict (classifier.weight, .bias)
//
// with the head classes SubwordClassificationHead (a linear layer on every sub-word: mtl.NER),
// CLSClassificationHead (a linear layer on the [CLS] hidden state, no pooler:
// mtl.PairClassification) and CLSRegressionHead (one score from [CLS]: mtl.Regression).
//
// IsReleased detects the layout, Load builds an mtl.Model and its tokenizer from it (the
// reference tokenises lower-cased), and Export writes an mtl.Model in it, heads as .pt files
// in torch's zip format (bert.WriteTorchZip) and JSON as the reference's
// TransformerHeadConfig.to_json_file writes it. Import then export gives back the same
// tensors, bit for bit.
//
// The reference labels [CLS], [SEP] and every non-first sub-word of a word BERT_TOKEN
// (mtl.ReferenceSubwordLabel); mtl's strict decoding reads that label at a word's first
// sub-word as O, and mtl.DecodeReference reproduces the reference's predict_ner.py grouping.
package mtt
