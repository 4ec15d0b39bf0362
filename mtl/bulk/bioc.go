package bulk

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/mtbert/mtbert/mtl"
)

// The BioC JSON structures, as bioc (bionlplab/bioc, biocjson) and PubTator write and read
// them.

// BioCCollection is a BioC collection of documents.
type BioCCollection struct {
	Type    string            `json:"bioctype"`
	Source  string            `json:"source"`
	Date    string            `json:"date"`
	Key     string            `json:"key"`
	Version string            `json:"version"`
	Infons  map[string]string `json:"infons"`
	Docs    []BioCDocument    `json:"documents"`
}

// BioCDocument is a BioC document: its passages and their annotations.
type BioCDocument struct {
	Type        string            `json:"bioctype"`
	ID          string            `json:"id"`
	Infons      map[string]string `json:"infons"`
	Passages    []BioCPassage     `json:"passages"`
	Annotations []BioCAnnotation  `json:"annotations"`
	Relations   []json.RawMessage `json:"relations"`
}

// BioCPassage is a passage of a BioC document, at Offset in the document.
type BioCPassage struct {
	Type        string            `json:"bioctype"`
	Offset      int               `json:"offset"`
	Infons      map[string]string `json:"infons"`
	Text        string            `json:"text"`
	Sentences   []json.RawMessage `json:"sentences"`
	Annotations []BioCAnnotation  `json:"annotations"`
	Relations   []json.RawMessage `json:"relations"`
}

// BioCAnnotation is an annotation of a passage.
type BioCAnnotation struct {
	ID        string            `json:"id"`
	Infons    map[string]string `json:"infons"`
	Text      string            `json:"text"`
	Locations []BioCLocation    `json:"locations"`
}

// BioCLocation is where an annotation lies: Offset and Length in the document.
type BioCLocation struct {
	Offset int `json:"offset"`
	Length int `json:"length"`
}

// NewBioCDocument renders one note as a BioC document: one passage at offset 0 holding the
// note, an annotation per entity (task by task in the order of tasks, then any other task,
// sorted; ids T1, T2, ...) with infons type, task and score, and one location whose offset
// and length count characters (Unicode code points), as mtl.Entity's Start and End do.
func NewBioCDocument(id, note string, ents map[string][]mtl.Entity, tasks []string) BioCDocument {
	p := BioCPassage{Type: "BioCPassage", Infons: map[string]string{}, Text: note, Sentences: []json.RawMessage{}, Annotations: []BioCAnnotation{}, Relations: []json.RawMessage{}}
	n := 0
	for _, task := range sortedTasks(ents, tasks) {
		for _, e := range ents[task] {
			n++
			p.Annotations = append(p.Annotations, BioCAnnotation{
				ID:        "T" + strconv.Itoa(n),
				Infons:    map[string]string{"type": e.Type, "task": task, "score": strconv.FormatFloat(e.Score, 'f', 4, 64)},
				Text:      e.Text,
				Locations: []BioCLocation{{Offset: e.Start, Length: e.End - e.Start}},
			})
		}
	}
	return BioCDocument{Type: "BioCDocument", ID: id, Infons: map[string]string{}, Passages: []BioCPassage{p}, Annotations: []BioCAnnotation{}, Relations: []json.RawMessage{}}
}

// biocSink streams one BioC JSON collection to w: the head, each document as it comes, and
// the tail at finish (the file around w is renamed into place only then).
type biocSink struct {
	w      io.Writer
	tasks  []string
	warn   func(format string, a ...any)
	n      int
	source string
}

func (s *biocSink) head() error {
	b, err := json.Marshal(BioCCollection{Type: "BioCCollection", Source: s.source, Date: time.Now().UTC().Format("2006-01-02"),
		Key: "mtbert.key", Version: "1.0", Infons: map[string]string{}, Docs: []BioCDocument{}})
	if err != nil {
		return err
	}
	// Cut the empty documents list's "]}" to append documents.
	_, err = s.w.Write(append(bytes.TrimSuffix(b, []byte("]}")), '\n'))
	return err
}

func (s *biocSink) put(it *item, o *Result, _ []byte) (bool, error) {
	if o.Error != "" {
		s.warn("id %s: %s", o.ID, o.Error)
		return false, nil // already counted
	}
	b, err := json.Marshal(NewBioCDocument(o.ID, it.text, o.Entities, s.tasks))
	if err != nil {
		return false, err
	}
	if s.n > 0 {
		if _, err := s.w.Write([]byte(",\n")); err != nil {
			return false, err
		}
	}
	s.n++
	_, err = s.w.Write(b)
	return false, err
}

func (s *biocSink) finish() error {
	_, err := s.w.Write([]byte("\n]}\n"))
	return err
}
