package compare

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// WriteText writes the report as a summary readable at a glance: one line
// per route, then the reported fields with examples.
func (r Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("compared %d answers: %d differ above the noise (%s); %d noise samples; margin %.0f%%, min count %d\n",
		r.Compared, r.Differing, pct(r.Differing, r.Compared), r.NoiseSamples, r.Margin*100, r.MinCount)
	if r.Overflow > 0 {
		ew.printf("  %d answers on routes beyond the route limit were not compared\n", r.Overflow)
	}
	for _, rt := range r.Routes {
		ew.printf("  %-40s %6d compared  %6d differ (%s)\n", rt.Route, rt.Compared, rt.Differing, pct(rt.Differing, rt.Compared))
		for _, f := range rt.Fields {
			ew.printf("      %-30s %-7s %5d (%s, noise %s)%s\n", f.Path, f.Kind, f.Count,
				pctf(f.Rate), pctf(f.NoiseRate), examples(f.Examples))
		}
		if n := len(rt.Noise); n > 0 {
			var names []string
			for i, f := range rt.Noise {
				if i == 5 {
					names = append(names, fmt.Sprintf("and %d more", n-5))
					break
				}
				names = append(names, f.Path)
			}
			ew.printf("      held back as noise: %s\n", strings.Join(names, ", "))
		}
	}
	return ew.err
}

func examples(ex []Example) string {
	if len(ex) == 0 {
		return ""
	}
	e := ex[0]
	return fmt.Sprintf("  e.g. %q -> %q", e.Primary, e.Shadow)
}

func pct(n, of int) string {
	if of == 0 {
		return "0%"
	}
	return pctf(float64(n) / float64(of))
}

func pctf(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

var htmlTmpl = template.Must(template.New("diff").Funcs(template.FuncMap{"pctf": pctf, "pct": pct}).Parse(`<section class="reprise-diff">
<h2>Answers compared</h2>
<p>{{.Compared}} answers compared, {{.Differing}} differ above the noise ({{pct .Differing .Compared}}); {{.NoiseSamples}} noise samples; margin {{pctf .Margin}}, minimum count {{.MinCount}}.</p>
<table>
<thead><tr><th>route</th><th>compared</th><th>differ</th><th>share</th><th>fields that differ</th></tr></thead>
<tbody>
{{- range .Routes}}
<tr><td><code>{{.Route}}</code></td><td>{{.Compared}}</td><td>{{.Differing}}</td><td>{{pctf .Share}}</td><td>
{{- range .Fields}}<div><code>{{.Path}}</code> {{.Kind}} {{.Count}} ({{pctf .Rate}}, noise {{pctf .NoiseRate}}){{range .Examples}}<br><small><code>{{.Primary}}</code> &rarr; <code>{{.Shadow}}</code></small>{{end}}</div>{{end}}
{{- if .Noise}}<details><summary>{{len .Noise}} held back as noise</summary>{{range .Noise}}<div><code>{{.Path}}</code>: {{.Why}}</div>{{end}}</details>{{end -}}
</td></tr>
{{- end}}
</tbody>
</table>
</section>
`))

// WriteHTMLSection writes the report as an HTML section (no scripts, no
// external URLs) to embed in a page.
func (r Report) WriteHTMLSection(w io.Writer) error { return htmlTmpl.Execute(w, r) }

// WriteHTML writes a whole self-contained page holding the section.
func (r Report) WriteHTML(w io.Writer, title string) error {
	ew := &errWriter{w: w}
	ew.printf(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}code{font-size:12px}</style>
</head><body>
`, template.HTMLEscapeString(title))
	if ew.err != nil {
		return ew.err
	}
	if err := r.WriteHTMLSection(w); err != nil {
		return err
	}
	ew.printf("</body></html>\n")
	return ew.err
}
