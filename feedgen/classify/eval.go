package classify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Offline evaluation over a labelled corpus directory (testdata/classify).
//
// DIR/labels.json lists items; each has a media file, a post, or both.
// Expected labels are ai_generated, ai_assisted, human or unknown. AI is
// the positive class: precision and recall count ai_generated and
// ai_assisted together, and the false-AI rate is the share of items
// expected "human" that got an AI label (the worst error: AI-SIGNALS.md
// §3.2).

// CorpusFile is the name of the labels file inside a corpus directory.
const CorpusFile = "labels.json"

// Expected labels in a corpus.
const (
	ExpectAIGenerated = "ai_generated"
	ExpectAIAssisted  = "ai_assisted"
	ExpectHuman       = "human"
	ExpectUnknown     = "unknown"
)

// Corpus is the content of labels.json.
type Corpus struct {
	Version int          `json:"version"`
	Items   []CorpusItem `json:"items"`
}

// CorpusItem is one labelled item.
type CorpusItem struct {
	Name string `json:"name"`
	// File is a media file relative to the corpus directory (optional).
	File string `json:"file,omitempty"`
	// Post holds record fields (optional).
	Post *CorpusPost `json:"post,omitempty"`
	// Expect is ai_generated, ai_assisted, human or unknown.
	Expect string `json:"expect"`
	// Signals are evidence signals a correct classification must include.
	Signals []string `json:"signals,omitempty"`
	Note    string   `json:"note,omitempty"`
	// Source, Commit and SHA256 say where a real file came from
	// ("owner/repo:path" at a commit) and pin its bytes; Field names the
	// metadata that justifies Expect (testdata/provenance).
	Source string `json:"source,omitempty"`
	Commit string `json:"commit,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Field  string `json:"field,omitempty"`
}

// CorpusPost holds the record-level fields of an item.
type CorpusPost struct {
	Text         string   `json:"text,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	SelfLabels   []string `json:"self_labels,omitempty"`
	AuthorLabels []string `json:"author_labels,omitempty"`
	Alt          string   `json:"alt,omitempty"`
}

// EvalItem is one row of the evaluation table.
type EvalItem struct {
	Name       string
	Expect     string
	Got        Label
	Confidence float64
	// Signals are the distinct non-info evidence signals, strongest first.
	Signals []string
	// OK is true when Got matches Expect (human ↔ human_declared).
	OK bool
	// MissingSignals are expected signals that were not produced.
	MissingSignals []string
}

// EvalResult holds the metrics and the per-item table.
type EvalResult struct {
	Items []EvalItem
	// TP, FP, FN count AI as the positive class.
	TP, FP, FN int
	// Human is the number of items expected human; FalseAI of them got an AI label.
	Human, FalseAI int
	// Precision is TP/(TP+FP), 1 when nothing was called AI.
	Precision float64
	// Recall is TP/(TP+FN), 1 when no item is expected AI.
	Recall float64
	// FalseAIRate is FalseAI/Human, 0 when there are no human items.
	FalseAIRate float64
	// Accuracy is the share of items whose label matched exactly.
	Accuracy float64
}

// LoadCorpus reads and checks DIR/labels.json.
func LoadCorpus(dir string) (*Corpus, error) {
	raw, err := os.ReadFile(filepath.Join(dir, CorpusFile))
	if err != nil {
		return nil, fmt.Errorf("load corpus: %w", err)
	}
	var c Corpus
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("load corpus %s: %w", dir, err)
	}
	names := map[string]bool{}
	for i, it := range c.Items {
		switch {
		case it.Name == "" || names[it.Name]:
			return nil, fmt.Errorf("load corpus: item %d: empty or duplicate name %q", i, it.Name)
		case it.File == "" && it.Post == nil:
			return nil, fmt.Errorf("load corpus: item %s: neither file nor post", it.Name)
		case it.File != "" && !filepath.IsLocal(it.File):
			return nil, fmt.Errorf("load corpus: item %s: file %q is not a local path", it.Name, it.File)
		}
		switch it.Expect {
		case ExpectAIGenerated, ExpectAIAssisted, ExpectHuman, ExpectUnknown:
		default:
			return nil, fmt.Errorf("load corpus: item %s: bad expect %q", it.Name, it.Expect)
		}
		names[it.Name] = true
	}
	return &c, nil
}

// Input builds the classifier input for an item, reading its file from dir.
func (it CorpusItem) Input(dir string) (*PostInput, error) {
	in := &PostInput{URI: "corpus:" + it.Name}
	alt := ""
	if it.Post != nil {
		in.Text, in.Tags = it.Post.Text, it.Post.Tags
		in.SelfLabels, in.AuthorLabels = it.Post.SelfLabels, it.Post.AuthorLabels
		alt = it.Post.Alt
	}
	if it.File != "" {
		f, err := os.Open(filepath.Join(dir, it.File))
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", it.Name, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxMediaBytes+1))
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", it.Name, err)
		}
		if len(b) > MaxMediaBytes {
			return nil, fmt.Errorf("item %s: %w", it.Name, ErrTooLarge)
		}
		in.Media = []Media{{CID: BlobCID(b), MIME: mimeByExt(it.File), Bytes: b, Alt: alt}}
	}
	return in, nil
}

func mimeByExt(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".heic", ".heif":
		return "image/heic"
	case ".avif":
		return "image/avif"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	}
	return "application/octet-stream"
}

// Eval classifies every item of the corpus in dir with c (Default when
// nil) and scores the result.
func Eval(ctx context.Context, dir string, c *Classifier) (*EvalResult, error) {
	if c == nil {
		c = Default()
	}
	corpus, err := LoadCorpus(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	res := &EvalResult{}
	exact, expectAI := 0, 0
	for _, it := range corpus.Items {
		in, err := it.Input(dir)
		if err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		v, err := c.Classify(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("eval: item %s: %w", it.Name, err)
		}
		row := EvalItem{Name: it.Name, Expect: it.Expect, Got: v.Label, Confidence: v.Confidence, Signals: signalsOf(v)}
		row.OK = labelMatches(it.Expect, v.Label)
		for _, s := range it.Signals {
			if !contains(row.Signals, s) {
				row.MissingSignals = append(row.MissingSignals, s)
			}
		}
		if row.OK {
			exact++
		}
		wantAI := it.Expect == ExpectAIGenerated || it.Expect == ExpectAIAssisted
		if wantAI {
			expectAI++
		}
		switch {
		case wantAI && v.Label.IsAI():
			res.TP++
		case !wantAI && v.Label.IsAI():
			res.FP++
		case wantAI:
			res.FN++
		}
		if it.Expect == ExpectHuman {
			res.Human++
			if v.Label.IsAI() {
				res.FalseAI++
			}
		}
		res.Items = append(res.Items, row)
	}
	res.Precision, res.Recall = 1, 1
	if res.TP+res.FP > 0 {
		res.Precision = float64(res.TP) / float64(res.TP+res.FP)
	}
	if expectAI > 0 {
		res.Recall = float64(res.TP) / float64(expectAI)
	}
	if res.Human > 0 {
		res.FalseAIRate = float64(res.FalseAI) / float64(res.Human)
	}
	if n := len(res.Items); n > 0 {
		res.Accuracy = float64(exact) / float64(n)
	}
	return res, nil
}

func labelMatches(expect string, got Label) bool {
	if expect == ExpectHuman {
		return got == LabelHumanDeclared
	}
	return string(got) == expect
}

func signalsOf(v Verdict) []string {
	var out []string
	for _, e := range v.Evidence {
		if e.Class != ClassInfo && !contains(out, e.Signal) {
			out = append(out, e.Signal)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// WriteTable prints the per-item table and a summary line.
func (r *EvalResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ITEM\tEXPECT\tGOT\tCONF\tOK\tEVIDENCE")
	for _, it := range r.Items {
		ok := "ok"
		if !it.OK {
			ok = "FAIL"
		}
		if len(it.MissingSignals) > 0 {
			ok += " missing:" + strings.Join(it.MissingSignals, ",")
		}
		sig := strings.Join(it.Signals, ",")
		if sig == "" {
			sig = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%s\t%s\n", it.Name, it.Expect, it.Got, it.Confidence, ok, sig)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	_, err := fmt.Fprintf(w, "items=%d tp=%d fp=%d fn=%d precision=%.4f recall=%.4f human=%d false_ai=%d false_ai_rate=%.4f accuracy=%.4f\n",
		len(r.Items), r.TP, r.FP, r.FN, r.Precision, r.Recall, r.Human, r.FalseAI, r.FalseAIRate, r.Accuracy)
	if err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// ErrEvalFailed is returned by Check when a corpus misses its targets.
var ErrEvalFailed = errors.New("evaluation below target")

// Check enforces the project's targets on its own corpus: precision 1 and
// no human item called AI.
func (r *EvalResult) Check() error {
	if r.Precision < 1 || r.FalseAI > 0 {
		return fmt.Errorf("precision %.4f, %d false-AI: %w", r.Precision, r.FalseAI, ErrEvalFailed)
	}
	return nil
}
