package htmlreport

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// series is one line (or bar set) of a chart: y values at the chart's x.
type series struct {
	name  string
	class string // CSS class: colour and style
	y     []float64
	ok    []bool // false leaves a gap
	bars  bool
	base  []float64 // bars: stacked on these values (nil: on zero)
}

type chart struct {
	id     string
	title  string
	unit   string // y-axis unit, e.g. "req/s", "ms"
	x      []float64
	series []series
	stages []Stage
	abort  *Abort
	xmax   float64
}

// Chart geometry in SVG user units; the SVG scales to the page width.
const (
	chartW  = 1000
	chartH  = 260
	marginL = 64
	marginR = 16
	marginT = 22
	marginB = 30
)

// niceStep returns a round step (1, 2 or 5 times a power of ten) that
// divides span into about n intervals.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// timeStep picks an x tick step in seconds that reads as clock time.
func timeStep(span float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200} {
		if span/s <= 10 {
			return s
		}
	}
	return 86400
}

func clock(sec float64) string {
	s := int(math.Round(sec))
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 10000:
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// render draws the chart as inline SVG.
func (c chart) render() template.HTML {
	var b strings.Builder
	esc := html.EscapeString
	pw, ph := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	xmax := c.xmax
	if xmax <= 0 {
		xmax = 1
	}
	ymax := 0.0
	for _, s := range c.series {
		for i, v := range s.y {
			if s.base != nil {
				v += s.base[i]
			}
			if (s.ok == nil || s.ok[i]) && v > ymax && !math.IsInf(v, 0) && !math.IsNaN(v) {
				ymax = v
			}
		}
	}
	ystep := niceStep(ymax, 4)
	ytop := math.Ceil(ymax/ystep) * ystep
	if ytop <= 0 {
		ytop = ystep
	}
	X := func(x float64) float64 { return marginL + pw*x/xmax }
	Y := func(y float64) float64 { return marginT + ph*(1-math.Min(y, ytop)/ytop) }

	fmt.Fprintf(&b, `<svg class="chart" id="%s" viewBox="0 0 %d %d" role="img" aria-label="%s">`, esc(c.id), chartW, chartH, esc(c.title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.title))
	// Stage bands, alternating shades, names along the top.
	for i, st := range c.stages {
		x0, x1 := X(math.Max(0, st.Start)), X(math.Min(xmax, st.End))
		if x1 <= x0 {
			continue
		}
		fmt.Fprintf(&b, `<rect class="stage stage%d" x="%s" y="%d" width="%s" height="%s"><title>stage %s: %s to %s</title></rect>`,
			i%2, f1(x0), marginT, f1(x1-x0), f1(ph), esc(st.Name), clock(st.Start), clock(st.End))
		if i > 0 {
			fmt.Fprintf(&b, `<line class="stage-edge" x1="%s" y1="%d" x2="%s" y2="%s"/>`, f1(x0), marginT, f1(x0), f1(marginT+ph))
		}
		fmt.Fprintf(&b, `<text class="stage-name" x="%s" y="%d">%s</text>`, f1(x0+4), marginT-6, esc(st.Name))
	}
	// Grid and axes.
	for y := 0.0; y <= ytop+ystep/2; y += ystep {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, marginL, f1(Y(y)), chartW-marginR, f1(Y(y)))
		fmt.Fprintf(&b, `<text class="ytick" x="%d" y="%s">%s</text>`, marginL-6, f1(Y(y)+4), num(y))
	}
	fmt.Fprintf(&b, `<text class="unit" x="%d" y="%d">%s</text>`, 4, marginT-6, esc(c.unit))
	xs := timeStep(xmax)
	for x := 0.0; x <= xmax+1e-9; x += xs {
		fmt.Fprintf(&b, `<text class="xtick" x="%s" y="%d">%s</text>`, f1(X(x)), chartH-10, clock(x))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%s" x2="%d" y2="%s"/>`, marginL, f1(Y(0)), chartW-marginR, f1(Y(0)))
	// Data.
	barW := pw / xmax * 0.8
	for _, s := range c.series {
		if s.bars {
			fmt.Fprintf(&b, `<g class="series %s">`, esc(s.class))
			for i, v := range s.y {
				if v <= 0 {
					continue
				}
				lo := 0.0
				if s.base != nil {
					lo = s.base[i]
				}
				fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s"><title>%s %s: %s</title></rect>`,
					f1(X(c.x[i])), f1(Y(lo+v)), f1(math.Max(barW, 1)), f1(Y(lo)-Y(lo+v)), clock(c.x[i]), esc(s.name), num(v))
			}
			b.WriteString(`</g>`)
			continue
		}
		var d strings.Builder
		pen := false
		for i, v := range s.y {
			if s.ok != nil && !s.ok[i] {
				pen = false
				continue
			}
			if pen {
				d.WriteString("L")
			} else {
				d.WriteString("M")
				pen = true
			}
			d.WriteString(f1(X(c.x[i])))
			d.WriteByte(',')
			d.WriteString(f1(Y(v)))
		}
		if d.Len() > 0 {
			fmt.Fprintf(&b, `<path class="series %s" d="%s"><title>%s</title></path>`, esc(s.class), d.String(), esc(s.name))
		}
	}
	if c.abort != nil {
		x := X(math.Min(c.abort.At, xmax))
		fmt.Fprintf(&b, `<line class="abort" x1="%s" y1="%d" x2="%s" y2="%s"><title>%s</title></line>`, f1(x), marginT, f1(x), f1(marginT+ph), esc(c.abort.Reason))
		anchor := "end"
		tx := x - 5
		if x < marginL+pw/3 {
			anchor, tx = "start", x+5
		}
		fmt.Fprintf(&b, `<text class="abort-label" x="%s" y="%d" text-anchor="%s">aborted at %s: %s</text>`, f1(tx), marginT+14, anchor, clock(c.abort.At), esc(c.abort.Rule))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
