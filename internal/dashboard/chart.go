package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// chart is one drawn chart of the health page.
type chart struct {
	Title, Unit, Family string
	// Current is the newest value as text; Empty: no value in the window.
	Current string
	Empty   bool
	SVG     template.HTML
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH    = 640, 170
	padLeft, padRight = 64, 12
	padTop, padBottom = 12, 26
	plotW, plotH      = chartW - padLeft - padRight, chartH - padTop - padBottom
	gridLines         = 4
	maxLabelDigits    = 4
	chartFont         = "11"
	timeTics          = 4
)

// formatValue writes a chart value with about maxLabelDigits significant digits.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', maxLabelDigits-1, 64)
	}
}

// agoLabel names a time axis tic: how long before now.
func agoLabel(d time.Duration) string {
	switch {
	case d < time.Second:
		return "now"
	case d < 2*time.Minute:
		return "−" + strconv.Itoa(int(d.Round(time.Second)/time.Second)) + " s"
	}
	return "−" + strconv.Itoa(int(d.Round(time.Minute)/time.Minute)) + " min"
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (an axis maximum).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// drawChart renders pts (between from and to) as an inline SVG line chart: grid lines
// with their values, a time axis in minutes before now, and one polyline per run of
// values without a gap. Drawn here because no maintained Go library renders small
// server-side SVG charts without scripts or external resources; everything written
// into the SVG is a number or a constant, so nothing needs escaping.
func drawChart(spec seriesSpec, pts []point, from, to time.Time) chart {
	c := chart{Title: spec.Title, Unit: spec.Unit, Family: spec.Family, Empty: true}
	lo, hi := 0.0, 0.0
	for _, p := range pts {
		if !p.ok {
			continue
		}
		if c.Empty || p.v > hi {
			hi = p.v
		}
		if c.Empty || p.v < lo {
			lo = p.v
		}
		c.Empty = false
		c.Current = formatValue(p.v)
	}
	if spec.Kind == kindGauge && lo > 0 && hi-lo < hi/2 {
		// A gauge that moves little (a sequence number) is drawn from near its minimum.
		lo = math.Floor(lo - (hi-lo)*0.1)
	} else {
		lo = 0
	}
	top := lo + niceCeil(hi-lo)
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 { return padLeft + plotW*t.Sub(from).Seconds()/span }
	y := func(v float64) float64 { return padTop + plotH*(1-(v-lo)/(top-lo)) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, template.HTMLEscapeString(spec.Title))
	for i := 0; i <= gridLines; i++ {
		v := lo + (top-lo)*float64(i)/gridLines
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padLeft, chartW-padRight, y(v), y(v))
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%.1f" text-anchor="end" font-size="%s">%s</text>`, padLeft-6, y(v)+4, chartFont, formatValue(v))
	}
	for i := 0; i <= timeTics; i++ {
		ago := time.Duration(float64(to.Sub(from)) * float64(timeTics-i) / timeTics)
		fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%d" text-anchor="middle" font-size="%s">%s</text>`, x(to.Add(-ago)), chartH-8, chartFont, agoLabel(ago))
	}
	var run [][2]float64
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			fmt.Fprintf(&b, `<circle class="dot" cx="%.1f" cy="%.1f" r="2.5"/>`, run[0][0], run[0][1])
		default:
			b.WriteString(`<polyline class="line" points="`)
			for i, p := range run {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", p[0], p[1])
			}
			b.WriteString(`"/>`)
		}
		run = run[:0]
	}
	for _, p := range pts {
		if !p.ok || p.at.Before(from) {
			flush()
			continue
		}
		run = append(run, [2]float64{x(p.at), y(p.v)})
	}
	flush()
	if c.Empty {
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="middle" font-size="13">no data yet</text>`, padLeft+plotW/2, padTop+plotH/2)
	}
	b.WriteString(`</svg>`)
	c.SVG = template.HTML(b.String()) // built above from numbers and escaped text only
	return c
}
