package htmlpage

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestRenderAndHeaders(t *testing.T) {
	fsys := fstest.MapFS{
		"assets/layout.html": {Data: []byte(`{{define "layout"}}<main>{{template "content" .}}</main>{{end}}`)},
		"assets/hello.html":  {Data: []byte(`{{define "content"}}Hello {{up .}}{{end}}`)},
		"assets/broken.html": {Data: []byte(`{{define "content"}}{{.Missing.Field}}{{end}}`)},
		"assets/style.css":   {Data: []byte("main{}")},
	}
	var logs bytes.Buffer
	s, err := Parse(fsys, template.FuncMap{"up": strings.ToUpper}, slog.New(slog.NewTextHandler(&logs, nil)), "hello", "broken")
	require.NoError(t, err)

	w := httptest.NewRecorder()
	SecurityHeaders(w.Header(), "'self'", "'self' https://app.example")
	s.Render(w, http.StatusTeapot, "hello", "<b>you</b>")
	require.Equal(t, http.StatusTeapot, w.Code)
	require.Equal(t, "<main>Hello &lt;B&gt;YOU&lt;/B&gt;</main>", w.Body.String(), "html/template escapes")
	require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	require.Equal(t, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' https://app.example; frame-ancestors 'none'; base-uri 'none'", w.Header().Get("Content-Security-Policy"))
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"} {
		require.Equal(t, v, w.Header().Get(k), k)
	}

	// A template that fails while executing is logged, not a panic.
	s.Render(httptest.NewRecorder(), http.StatusOK, "broken", 42)
	require.Contains(t, logs.String(), "rendering page")

	css := httptest.NewRecorder()
	s.Stylesheet("no-cache")(css, httptest.NewRequest(http.MethodGet, "/style.css", nil))
	require.Equal(t, "main{}", css.Body.String())
	require.Equal(t, "text/css; charset=utf-8", css.Header().Get("Content-Type"))
	require.Equal(t, "no-cache", css.Header().Get("Cache-Control"))

	_, err = Parse(fsys, nil, slog.New(slog.DiscardHandler), "absent")
	require.ErrorContains(t, err, "template absent")
}
