package htmlreport

import (
	"html/template"
	"io"
	"math"
	"time"
)

// Render writes the report as one self-contained HTML page.
func Render(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return page.Execute(w, r.view())
}

type legend struct{ Name, Class string }

type panel struct {
	Title  string
	Note   string
	Legend []legend
	SVG    template.HTML
}

type view struct {
	*Report
	StartedText string
	Length      string
	Panels      []panel
}

func (r *Report) view() view {
	s := group(r.Series, MaxPoints)
	n := len(s)
	x := make([]float64, n)
	intended, achieved := make([]float64, n), make([]float64, n)
	p50, p90, p99 := make([]float64, n), make([]float64, n), make([]float64, n)
	errs, touts := make([]float64, n), make([]float64, n)
	ok := make([]bool, n)
	xmax := 1.0
	for i, sec := range s {
		x[i] = float64(sec.T)
		intended[i], achieved[i] = sec.Intended, sec.Achieved
		p50[i], p90[i], p99[i] = sec.P50, sec.P90, sec.P99
		errs[i], touts[i] = float64(sec.Errors-sec.Timeouts), float64(sec.Timeouts)
		ok[i] = sec.Completed > 0
		xmax = math.Max(xmax, float64(sec.T+1))
	}
	for _, st := range r.Stages {
		xmax = math.Max(xmax, math.Min(st.End, xmax*1.05))
	}
	if r.Abort != nil {
		xmax = math.Max(xmax, r.Abort.At)
	}
	base := chart{x: x, stages: r.Stages, abort: r.Abort, xmax: xmax}
	rps := base
	rps.id, rps.title, rps.unit = "rps", "Requests per second, intended and achieved", "req/s"
	// Achieved first, so the dashed intended line stays visible on top.
	rps.series = []series{{name: "achieved", class: "achieved", y: achieved}, {name: "intended", class: "intended", y: intended}}
	lat := base
	lat.id, lat.title, lat.unit = "latency", "Latency from the due time: p50, p90, p99", "ms"
	lat.series = []series{{name: "p50", class: "p50", y: p50, ok: ok}, {name: "p90", class: "p90", y: p90, ok: ok}, {name: "p99", class: "p99", y: p99, ok: ok}}
	er := base
	er.id, er.title, er.unit = "errors", "Errors per second", "errors"
	// Timeouts at the bottom, the other errors stacked on them.
	er.series = []series{{name: "timeouts", class: "timeout", y: touts, bars: true}, {name: "other errors", class: "err", y: errs, bars: true, base: touts}}

	v := view{Report: r}
	if !r.Started.IsZero() {
		v.StartedText = r.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	if n > 0 {
		v.Length = (time.Duration(s[n-1].T+1) * time.Second).String()
	}
	v.Panels = []panel{
		{Title: rps.title, Note: "Achieved below intended means the target, a cap or the replay could not keep up; it shows as lag.",
			Legend: []legend{{"intended", "intended"}, {"achieved", "achieved"}}, SVG: rps.render()},
		{Title: lat.title, Note: "Measured from when each request was due, so waiting behind a slow target counts.",
			Legend: []legend{{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}}, SVG: lat.render()},
		{Title: er.title, Note: "Requests without a response or with a 5xx status; timeouts at the bottom of each bar.",
			Legend: []legend{{"timeouts", "timeout"}, {"other errors", "err"}}, SVG: er.render()},
	}
	return v
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --fg:#1d2430; --muted:#5d6878; --line:#d9dee6; --bg:#ffffff; --panel:#f7f8fa;
  --intended:#8a94a6; --achieved:#1f6feb; --p50:#2da44e; --p90:#d4a72c; --p99:#cf222e; --err:#cf222e; --timeout:#8250df; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px 48px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 2px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.meta span + span::before { content: " · "; }
.outcome { display: inline-block; padding: 6px 12px; border-radius: 6px; margin: 0 0 20px; font-weight: 600; background: #dafbe1; color: #116329; }
.outcome.aborted { background: #ffebe9; color: #a40e26; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px 8px; margin: 0 0 18px; }
.note { color: var(--muted); margin: 0 0 6px; font-size: 13px; }
.legend { margin: 0 0 4px; font-size: 13px; }
.legend span { margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 14px; height: 4px; vertical-align: middle; margin-right: 5px; border-radius: 2px; }
.sw-intended { background: var(--intended); } .sw-achieved { background: var(--achieved); }
.sw-p50 { background: var(--p50); } .sw-p90 { background: var(--p90); } .sw-p99 { background: var(--p99); }
.sw-err { background: var(--err); } .sw-timeout { background: var(--timeout); }
svg.chart { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .ytick { text-anchor: end; } svg .xtick { text-anchor: middle; }
svg .stage0 { fill: #eef2f8; } svg .stage1 { fill: #e3e9f3; }
svg .stage-edge { stroke: #9aa7bd; stroke-dasharray: 3 3; }
svg .stage-name { fill: #44506a; font-weight: 600; }
svg path.series { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg path.intended { stroke: var(--intended); stroke-dasharray: 6 4; }
svg path.achieved { stroke: var(--achieved); }
svg path.p50 { stroke: var(--p50); } svg path.p90 { stroke: var(--p90); } svg path.p99 { stroke: var(--p99); }
svg g.err rect { fill: var(--err); } svg g.timeout rect { fill: var(--timeout); }
svg .abort { stroke: #cf222e; stroke-width: 2; stroke-dasharray: 5 3; }
svg .abort-label { fill: #a40e26; font-weight: 700; }
table { border-collapse: collapse; margin: 0 0 18px; min-width: 420px; }
th, td { text-align: left; padding: 5px 14px 5px 0; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { color: #a40e26; font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{if .Target}}<span>target {{.Target}}</span>{{end}}{{range .Recording}}<span>{{.}}</span>{{end}}{{if .StartedText}}<span>started {{.StartedText}}</span>{{end}}{{if .Length}}<span>{{.Length}}</span>{{end}}</p>
{{if .Abort}}<p class="outcome aborted" id="outcome">{{if .Outcome}}{{.Outcome}}: {{end}}{{.Abort.Reason}}</p>
{{else}}<p class="outcome" id="outcome">{{if .Outcome}}{{.Outcome}}{{else}}completed{{end}}</p>{{end}}
{{if .Series}}{{range .Panels}}<section class="panel">
<h2>{{.Title}}</h2>
<p class="note">{{.Note}}</p>
<p class="legend">{{range .Legend}}<span><i class="sw-{{.Class}}"></i>{{.Name}}</span>{{end}}</p>
{{.SVG}}
</section>
{{end}}{{else}}<p class="empty">No requests were recorded for this run.</p>{{end}}
{{if .Summary}}<h2>Summary</h2>
<table id="summary">
{{range .Summary}}<tr><th>{{.Name}}</th><td class="num{{if .Bad}} bad{{end}}">{{.Value}}</td></tr>
{{end}}</table>{{end}}
{{if .Routes}}<h2>Routes</h2>
<table id="routes">
<tr><th>route</th><th class="num">requests</th><th class="num">errors</th><th class="num">p50 ms</th><th class="num">p90 ms</th><th class="num">p99 ms</th></tr>
{{range .Routes}}<tr><td>{{.Route}}</td><td class="num">{{.Requests}}</td><td class="num{{if .Errors}} bad{{end}}">{{.Errors}}</td><td class="num">{{printf "%.1f" .P50}}</td><td class="num">{{printf "%.1f" .P90}}</td><td class="num">{{printf "%.1f" .P99}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))

// group merges runs of seconds so that at most max points remain. Each
// point keeps its first second's T and shows per-second averages of the
// counts and the worst percentiles of the group.
func group(in []Second, max int) []Second {
	if len(in) <= max {
		return in
	}
	size := (len(in) + max - 1) / max
	out := make([]Second, 0, max)
	for i := 0; i < len(in); i += size {
		end := min(i+size, len(in))
		g := Second{T: in[i].T}
		var errs, touts int
		for _, s := range in[i:end] {
			g.Intended += s.Intended
			g.Achieved += s.Achieved
			g.Completed += s.Completed
			errs += s.Errors
			touts += s.Timeouts
			g.P50, g.P90, g.P99 = math.Max(g.P50, s.P50), math.Max(g.P90, s.P90), math.Max(g.P99, s.P99)
		}
		n := float64(end - i)
		g.Intended /= n
		g.Achieved /= n
		// Errors are ints in Second; round the averages so a burst
		// inside a group still shows.
		g.Errors = int(math.Ceil(float64(errs) / n))
		g.Timeouts = int(math.Ceil(float64(touts) / n))
		out = append(out, g)
	}
	return out
}
