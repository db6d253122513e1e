// Package htmlpage holds what Hearth's server-rendered pages share (pds/web: sign-in,
// consent and account; internal/dashboard: the operator dashboard): templates parsed
// per page from an embedded folder, the security headers every page carries, and
// rendering with a logged failure.
package htmlpage

import (
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
)

// Set is one package's page templates: each page is assets/layout.html plus
// assets/<name>.html, executed from the "layout" template; and its stylesheet,
// assets/style.css.
type Set struct {
	tmpl map[string]*template.Template
	css  []byte
	log  *slog.Logger
}

// Parse parses the named pages from fsys.
func Parse(fsys fs.FS, funcs template.FuncMap, log *slog.Logger, names ...string) (*Set, error) {
	s := &Set{tmpl: map[string]*template.Template{}, log: log}
	for _, name := range names {
		t, err := template.New(name).Funcs(funcs).ParseFS(fsys, "assets/layout.html", "assets/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		s.tmpl[name] = t
	}
	css, err := fs.ReadFile(fsys, "assets/style.css")
	if err != nil {
		return nil, fmt.Errorf("stylesheet: %w", err)
	}
	s.css = css
	return s, nil
}

// Stylesheet serves assets/style.css with the given Cache-Control.
func (s *Set) Stylesheet(cacheControl string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(s.css)
	}
}

// Render writes the page with status. The security headers must be set before.
func (s *Set) Render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.tmpl[name].ExecuteTemplate(w, "layout", data); err != nil {
		s.log.Error("rendering page", "page", name, "err", err)
	}
}

// SecurityHeaders sets what every page carries: a Content-Security-Policy allowing no
// script, only this origin's stylesheet, images from imgSrc and forms to formAction;
// no framing; no sniffing; the referrer only to this origin (not no-referrer: forms
// would then send Origin: null); nothing cached.
func SecurityHeaders(h http.Header, imgSrc, formAction string) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src "+imgSrc+"; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
