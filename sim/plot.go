package sim

import (
	"fmt"
	"strings"
)

// Plot draws a report as an SVG document: the byte split (server, peers,
// cache), and the offload of tracks by how often they were played, next
// to its ceiling.
func Plot(r Report) string {
	const w, h = 820, 420
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", w, h)
	hubs := ""
	if r.Hub.Hubs > 1 {
		hubs = fmt.Sprintf(", %d hubs", r.Hub.Hubs)
	}
	fmt.Fprintf(&b, `<text x="20" y="28" font-size="16" font-weight="bold">ztream sim: %s, %s listeners, %g h%s (seed %d)</text>`+"\n",
		svgText(r.Scenario), thousands(r.Listeners), r.Hours, hubs, r.Seed)
	// The byte split: one stacked bar.
	x, y, bw := 20.0, 50.0, 780.0
	parts := []struct {
		name  string
		v     float64
		color string
	}{{"server", r.ServerShare, "#d62728"}, {"peers", r.P2PShare, "#2ca02c"}, {"cache", r.CacheShare, "#1f77b4"}}
	for _, p := range parts {
		pw := p.v * bw
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="28" fill="%s"/>`+"\n", x, y, pw, p.color)
		if pw > 70 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#fff">%s %.1f %%</text>`+"\n", x+6, y+19, p.name, 100*p.v)
		}
		x += pw
	}
	fmt.Fprintf(&b, `<text x="20" y="100">bytes: server %.1f %%, peers %.1f %%, cache %.1f %%; offload %.3f (ceiling %.3f)</text>`+"\n",
		100*r.ServerShare, 100*r.P2PShare, 100*r.CacheShare, r.Offload, r.OffloadCeiling)
	fmt.Fprintf(&b, `<text x="20" y="118">%.2f stalls per 1,000 plays; start p50 %.0f ms, p99 %.0f ms (network plays: %.0f / %.0f ms)</text>`+"\n",
		r.StallsPer1000, r.StartMS.P50, r.StartMS.P99, r.NetStartMS.P50, r.NetStartMS.P99)
	// Offload by swarm size: bars (offload) and ticks (ceiling).
	top, bot, left := 156.0, 370.0, 70.0
	fmt.Fprintf(&b, `<text x="20" y="%.0f">offload of network bytes, by the times a track was played over the network (tick: ceiling; grey: tracks)</text>`+"\n", top-12)
	for i := 0; i <= 4; i++ {
		v := float64(i) / 4
		yy := bot - v*(bot-top)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="800" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%.2f</text>`+"\n", left, yy, yy, left-6, yy+4, v)
	}
	n := max(len(r.BySwarm), 1)
	slot := (800 - left) / float64(n)
	for i, row := range r.BySwarm {
		cx := left + slot*float64(i) + slot/2
		bh := row.Offload * (bot - top)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2ca02c"/>`+"\n", cx-slot*0.3, bot-bh, slot*0.6, bh)
		cy := bot - row.Ceiling*(bot-top)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="3"/>`+"\n", cx-slot*0.35, cy, cx+slot*0.35, cy)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text><text x="%.1f" y="%.0f" text-anchor="middle" fill="#666">%s</text>`+"\n",
			cx, bot+18, row.Label(), cx, bot+34, thousands(row.Tracks))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// thousands formats n with commas between thousands.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

var svgText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
