package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// plotSeries is one kind of load row on the swarm plot.
type plotSeries struct {
	name   string
	color  string
	marker string // circle, square, triangle or diamond
	rows   []rowResult
}

// plotSeries returns the P2P rows by kind, each sorted by peers; kinds
// without a row are left out.
func (r *report) plotSeries() []plotSeries {
	defs := []struct {
		kind                rowKind
		name, color, marker string
	}{
		{kindFlash, "flash crowd: one cold 30 s track", "#d62728", "circle"},
		{kindShort, "three 20–30 s tracks", "#9467bd", "diamond"},
		{kindScaling, "demo library (2–3 min tracks)", "#1f77b4", "square"},
		{kindBig, "demo library (2–3 min tracks)", "#2ca02c", "triangle"},
	}
	var out []plotSeries
	for _, d := range defs {
		var rows []rowResult
		for _, x := range r.rowsOf(d.kind) {
			if x.Spec.P2P && x.Rep.Playbacks > 0 {
				rows = append(rows, x)
			}
		}
		if len(rows) == 0 {
			continue
		}
		slices.SortFunc(rows, func(a, b rowResult) int { return a.Spec.Peers - b.Spec.Peers })
		out = append(out, plotSeries{name: fmt.Sprintf("%s, %gx", d.name, rows[0].Speed), color: d.color, marker: d.marker, rows: rows})
	}
	return out
}

// Plot geometry (SVG user units).
const (
	plotW, plotH         = 1000, 680
	plotLeft, plotRight  = 80, 620
	panelATop, panelABot = 95, 315 // offload panel: top and bottom
	panelBTop, panelBBot = 385, 605
	legendX              = 660
)

// svgEscape escapes text for SVG.
var svgEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace

// swarmPlot draws offload (with its ceiling) and server copies against the
// number of peers, both x axes logarithmic, as an SVG document; false when
// no P2P row ran.
func (r *report) swarmPlot() (string, bool) {
	series := r.plotSeries()
	if len(series) == 0 {
		return "", false
	}
	minN, maxN := math.MaxInt, 0
	minOff, minCopies, maxCopies := 1.0, math.Inf(1), 0.0
	for _, s := range series {
		for _, x := range s.rows {
			minN, maxN = min(minN, x.Spec.Peers), max(maxN, x.Spec.Peers)
			minOff = min(minOff, x.Rep.OffloadRatio, x.Rep.OffloadCeiling)
			if x.Rep.ServerCopies > 0 {
				minCopies, maxCopies = min(minCopies, x.Rep.ServerCopies), max(maxCopies, x.Rep.ServerCopies)
			}
		}
	}
	// x: log of peers, with some room on both sides.
	lx0, lx1 := math.Log10(float64(minN)/1.5), math.Log10(float64(maxN)*1.5)
	xOf := func(n float64) float64 { return plotLeft + (math.Log10(n)-lx0)/(lx1-lx0)*(plotRight-plotLeft) }
	// Offload panel: linear, from a tenth at or below the lowest value to 1.
	y0 := min(0.5, math.Floor(minOff*10)/10)
	yOff := func(v float64) float64 { return panelABot - (v-y0)/(1-y0)*(panelABot-panelATop) }
	// Copies panel: log, snapped to the 1-2-5 ticks around the values.
	if math.IsInf(minCopies, 1) {
		minCopies, maxCopies = 1, 1
	}
	ticks125 := []float64{}
	for e := -1; e <= 5; e++ {
		for _, m := range []float64{1, 2, 5} {
			ticks125 = append(ticks125, m*math.Pow(10, float64(e)))
		}
	}
	c0, c1 := ticks125[0], ticks125[len(ticks125)-1]
	for _, t := range ticks125 {
		if t <= min(0.5, minCopies/1.2) {
			c0 = t
		}
	}
	for i := len(ticks125) - 1; i >= 0; i-- {
		if ticks125[i] >= max(2, maxCopies*1.2) {
			c1 = ticks125[i]
		}
	}
	yCop := func(v float64) float64 {
		v = min(max(v, c0), c1)
		return panelBBot - (math.Log10(v)-math.Log10(c0))/(math.Log10(c1)-math.Log10(c0))*(panelBBot-panelBTop)
	}

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n",
		plotW, plotH, plotW, plotH)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="30" font-size="19" font-weight="bold">Ztream swarm: offload and server copies against swarm size</text>`+"\n", plotLeft)
	p(`<text x="%d" y="52" font-size="13" fill="#555">%s, %d CPUs, %s UTC (go run ./bench)</text>`+"\n", plotLeft,
		svgEscape(r.Machine.CPUModel), r.Machine.CPUs, r.Started.Format("2006-01-02 15:04"))

	// x ticks: decades and the peer counts plotted, none closer than 24 units.
	var xt []float64
	for e := 0; e <= 5; e++ {
		xt = append(xt, math.Pow(10, float64(e)))
	}
	for _, s := range series {
		for _, x := range s.rows {
			xt = append(xt, float64(x.Spec.Peers))
		}
	}
	var kept []float64
	for _, t := range xt {
		if t < math.Pow(10, lx0) || t > math.Pow(10, lx1) {
			continue
		}
		near := false
		for _, k := range kept {
			near = near || math.Abs(xOf(t)-xOf(k)) < 24
		}
		if !near {
			kept = append(kept, t)
		}
	}
	slices.Sort(kept)
	panel := func(top, bottom int, title, ytitle string) {
		p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", plotLeft, top, plotRight-plotLeft, bottom-top)
		p(`<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", plotLeft, top-8, svgEscape(title))
		cy := (top + bottom) / 2
		p(`<text x="22" y="%d" font-size="13" text-anchor="middle" transform="rotate(-90 22 %d)">%s</text>`+"\n", cy, cy, svgEscape(ytitle))
		for _, t := range kept {
			x := xOf(t)
			p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, bottom)
			p(`<text x="%.1f" y="%d" font-size="12" text-anchor="middle">%s</text>`+"\n", x, bottom+16, fmt.Sprintf("%g", t))
		}
	}
	panel(panelATop, panelABot, "Offload: p2p ÷ (p2p + server bytes)", "offload")
	for v := y0; v <= 1.0001; v += 0.1 {
		y := yOff(v)
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y, plotRight, y)
		p(`<text x="%d" y="%.1f" font-size="12" text-anchor="end">%.1f</text>`+"\n", plotLeft-6, y+4, v)
	}
	panel(panelBTop, panelBBot, "Server copies: server bytes ÷ bytes of the distinct tracks played", "server copies (log scale)")
	for _, t := range ticks125 {
		if t < c0 || t > c1 {
			continue
		}
		y := yCop(t)
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y, plotRight, y)
		p(`<text x="%d" y="%.1f" font-size="12" text-anchor="end">%g</text>`+"\n", plotLeft-6, y+4, t)
	}
	p(`<text x="%d" y="%d" font-size="13" text-anchor="middle">peers in the swarm (log scale)</text>`+"\n", (plotLeft+plotRight)/2, panelBBot+40)

	// Reference lines: 1 − 1/N above, one copy and the flash-crowd goal below.
	var pts []string
	for n := math.Pow(10, lx0); ; n = min(n*1.05, math.Pow(10, lx1)) {
		if v := 1 - 1/n; v >= y0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(n), yOff(v)))
		}
		if n >= math.Pow(10, lx1) {
			break
		}
	}
	p(`<polyline points="%s" fill="none" stroke="#777" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", strings.Join(pts, " "))
	p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#777" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", plotLeft, yCop(1), plotRight, yCop(1))
	p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#d62728" stroke-width="1.2" stroke-dasharray="2 3"/>`+"\n",
		plotLeft, yCop(goalFlashCopies), plotRight, yCop(goalFlashCopies))

	// The series: a thin line through each, markers on the points.
	for _, s := range series {
		var off, cop []string
		for _, x := range s.rows {
			n := float64(x.Spec.Peers)
			off = append(off, fmt.Sprintf("%.1f,%.1f", xOf(n), yOff(x.Rep.OffloadRatio)))
			cop = append(cop, fmt.Sprintf("%.1f,%.1f", xOf(n), yCop(x.Rep.ServerCopies)))
		}
		for _, line := range [][]string{off, cop} {
			if len(line) > 1 {
				p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" opacity="0.6"/>`+"\n", strings.Join(line, " "), s.color)
			}
		}
		for _, x := range s.rows {
			n := float64(x.Spec.Peers)
			b.WriteString(marker(s.marker, xOf(n), yOff(x.Rep.OffloadCeiling), s.color, false))
			b.WriteString(marker(s.marker, xOf(n), yOff(x.Rep.OffloadRatio), s.color, true))
			b.WriteString(marker(s.marker, xOf(n), yCop(x.Rep.ServerCopies), s.color, true))
		}
	}

	// Legend.
	y := panelATop - 8
	p(`<text x="%d" y="%d" font-size="14" font-weight="bold">Load rows (P2P on)</text>`+"\n", legendX, y)
	for _, s := range series {
		y += 24
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" opacity="0.6"/>`+"\n", legendX, y-4, legendX+28, y-4, s.color)
		b.WriteString(marker(s.marker, legendX+14, float64(y-4), s.color, true))
		p(`<text x="%d" y="%d" font-size="12.5">%s</text>`+"\n", legendX+38, y, svgEscape(s.name))
	}
	y += 34
	p(`<text x="%d" y="%d" font-size="14" font-weight="bold">Marks and lines</text>`+"\n", legendX, y)
	legendRow := func(draw, text string) {
		y += 24
		b.WriteString(draw)
		p(`<text x="%d" y="%d" font-size="12.5">%s</text>`+"\n", legendX+38, y, svgEscape(text))
	}
	legendRow(marker("circle", legendX+14, float64(y+20), "#333", true), "offload, server copies (measured)")
	legendRow(marker("circle", legendX+14, float64(y+20), "#333", false), "offload ceiling (load report)")
	legendRow(fmt.Sprintf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#777" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n",
		legendX, y+20, legendX+28, y+20), "1 − 1/N (above); 1 server copy (below)")
	legendRow(fmt.Sprintf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d62728" stroke-width="1.2" stroke-dasharray="2 3"/>`+"\n",
		legendX, y+20, legendX+28, y+20), fmt.Sprintf("%.1f copies: flash-crowd goal (%d peers)", goalFlashCopies, goalFlashPeers))
	y += 34
	for _, l := range []string{
		"1 − 1/N: the offload when N peers each play",
		"a track once and the server sends it once.",
		"Ceiling: 1 − (bytes of the distinct tracks",
		"played) ÷ (server + p2p bytes).",
	} {
		p(`<text x="%d" y="%d" font-size="12" fill="#444">%s</text>`+"\n", legendX, y, svgEscape(l))
		y += 17
	}
	p("</svg>\n")
	return b.String(), true
}

// marker draws one point mark, filled or hollow.
func marker(shape string, x, y float64, color string, filled bool) string {
	fill := "white"
	if filled {
		fill = color
	}
	style := fmt.Sprintf(`fill="%s" stroke="%s" stroke-width="1.6"`, fill, color)
	switch shape {
	case "square":
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="9" height="9" %s/>`+"\n", x-4.5, y-4.5, style)
	case "triangle":
		return fmt.Sprintf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" %s/>`+"\n", x, y-6, x-5.5, y+4.5, x+5.5, y+4.5, style)
	case "diamond":
		return fmt.Sprintf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" %s/>`+"\n", x, y-6, x+6, y, x, y+6, x-6, y, style)
	default:
		return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="5" %s/>`+"\n", x, y, style)
	}
}
