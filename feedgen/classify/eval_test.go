package classify

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvalCorpus(t *testing.T) {
	res, err := Eval(context.Background(), corpusDir, nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, res.WriteTable(&buf))
	t.Log("\n" + buf.String())
	assert.NoError(t, res.Check())
	assert.Equal(t, 1.0, res.Precision)
	assert.Equal(t, 1.0, res.Recall)
	assert.Zero(t, res.FalseAI)
	assert.Zero(t, res.FalseAIRate)
	assert.Positive(t, res.Human)
	for _, it := range res.Items {
		assert.True(t, it.OK, "%s: got %s want %s", it.Name, it.Got, it.Expect)
		assert.Empty(t, it.MissingSignals, it.Name)
	}
	assert.Contains(t, buf.String(), "precision=1.0000")
}

// writeCorpus writes a corpus directory from labels JSON and files.
func writeCorpus(t *testing.T, labels string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, CorpusFile), []byte(labels), 0o644))
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	return dir
}

func TestEvalMetrics(t *testing.T) {
	png, err := os.ReadFile(filepath.Join(corpusDir, "png-a1111-text.png"))
	require.NoError(t, err)
	// One true positive, one human item wrongly expected (the file is AI),
	// one missed AI post (only hashtags), one unknown.
	labels := `{"version":1,"items":[
	 {"name":"tp","file":"a.png","expect":"ai_generated","signals":["gen.a1111"]},
	 {"name":"false-ai","file":"a.png","expect":"human"},
	 {"name":"missed","post":{"text":"#aiart"},"expect":"ai_generated"},
	 {"name":"unk","post":{"text":"hello"},"expect":"unknown","signals":["gen.comfyui"]}]}`
	dir := writeCorpus(t, labels, map[string][]byte{"a.png": png})
	res, err := Eval(context.Background(), dir, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, res.TP)
	assert.Equal(t, 1, res.FP)
	assert.Equal(t, 1, res.FN)
	assert.InDelta(t, 0.5, res.Precision, 1e-9)
	assert.InDelta(t, 0.5, res.Recall, 1e-9)
	assert.Equal(t, 1, res.Human)
	assert.Equal(t, 1, res.FalseAI)
	assert.InDelta(t, 1.0, res.FalseAIRate, 1e-9)
	assert.InDelta(t, 0.5, res.Accuracy, 1e-9)
	assert.ErrorIs(t, res.Check(), ErrEvalFailed)
	assert.Equal(t, []string{"gen.comfyui"}, res.Items[3].MissingSignals)
	var buf bytes.Buffer
	require.NoError(t, res.WriteTable(&buf))
	assert.Contains(t, buf.String(), "FAIL")
	assert.Contains(t, buf.String(), "missing:gen.comfyui")
	assert.Equal(t, 6, strings.Count(buf.String(), "\n"))
}

func TestEvalBadCorpus(t *testing.T) {
	for name, labels := range map[string]string{
		"bad json":     `{`,
		"dup name":     `{"items":[{"name":"a","post":{},"expect":"unknown"},{"name":"a","post":{},"expect":"unknown"}]}`,
		"bad expect":   `{"items":[{"name":"a","post":{},"expect":"maybe"}]}`,
		"escape":       `{"items":[{"name":"a","file":"../x.png","expect":"unknown"}]}`,
		"absolute":     `{"items":[{"name":"a","file":"/etc/passwd","expect":"unknown"}]}`,
		"empty item":   `{"items":[{"name":"a","expect":"unknown"}]}`,
		"missing file": `{"items":[{"name":"a","file":"nope.png","expect":"unknown"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Eval(context.Background(), writeCorpus(t, labels, nil), nil)
			assert.Error(t, err)
		})
	}
	_, err := Eval(context.Background(), t.TempDir(), nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
