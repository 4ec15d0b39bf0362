package mtt

import "testing"

// TestPyJSON checks pyJSON against what Python 3's json.dumps(v, indent=2, sort_keys=True)
// prints for the same values (strings below copied from python3).
func TestPyJSON(t *testing.T) {
	v := map[string]any{
		"labels":              []string{"B-problem", "O", "caf\u00e9 \"x\"\n\U0001F600"},
		"head_name":           "SubwordClassificationHead",
		"hidden_dropout_prob": 0.1,
		"hidden_size":         768,
		"evaluate_biluo":      false,
		"none":                nil,
		"empty":               []string{},
		"big":                 1e16,
		"small":               1e-05,
		"whole":               3.0,
	}
	want := `{
  "big": 1e+16,
  "empty": [],
  "evaluate_biluo": false,
  "head_name": "SubwordClassificationHead",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "labels": [
    "B-problem",
    "O",
    "caf\u00e9 \"x\"\n\ud83d\ude00"
  ],
  "none": null,
  "small": 1e-05,
  "whole": 3.0
}
`
	got, err := pyJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for f, want := range map[float64]string{123456789: "123456789.0", 0.0001: "0.0001", 0.00001234: "1.234e-05", -2.5: "-2.5", 1e15: "1000000000000000.0"} {
		if got, _ := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}
