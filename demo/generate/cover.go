package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// coverSize is the side of the album cover in pixels; coverScale the
// supersampling factor it is drawn at (then box-filtered down).
const (
	coverSize  = 480
	coverScale = 2
)

// albumCover draws the demo album's cover: peers of a swarm (dots) linked
// to their neighbours over a dark gradient, in the page's teal and violet,
// with one bright seeder at the centre. It is a deterministic JPEG (a few
// tens of KiB: LAME embeds pictures up to 128 KiB).
func albumCover() ([]byte, error) {
	const n = coverSize * coverScale
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	// Background: a diagonal gradient from deep blue to violet-black.
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			t := (float64(x) + float64(y)) / float64(2*n)
			img.SetRGBA(x, y, color.RGBA{
				R: uint8(12 + 30*t), G: uint8(18 + 10*(1-t)), B: uint8(40 + 40*t), A: 255,
			})
		}
	}
	rng := rand.New(rand.NewPCG(0x2d0a, 0xc0de))
	type node struct{ x, y, r float64 }
	centre := node{0.5 * n, 0.5 * n, 0.045 * n}
	nodes := []node{centre}
	for len(nodes) < 34 {
		a := rng.Float64() * 2 * math.Pi
		d := (0.14 + 0.34*math.Sqrt(rng.Float64())) * n
		c := node{centre.x + d*math.Cos(a), centre.y + d*math.Sin(a), (0.008 + 0.012*rng.Float64()) * n}
		ok := true
		for _, o := range nodes {
			if math.Hypot(c.x-o.x, c.y-o.y) < 0.07*n {
				ok = false
				break
			}
		}
		if ok {
			nodes = append(nodes, c)
		}
	}
	teal := color.RGBA{94, 234, 212, 255}
	violet := color.RGBA{167, 139, 250, 255}
	// Links: each peer to its three nearest, fainter with distance.
	for i, a := range nodes {
		type near struct {
			j int
			d float64
		}
		var best []near
		for j, b := range nodes {
			if j != i {
				best = append(best, near{j, math.Hypot(a.x-b.x, a.y-b.y)})
			}
		}
		for k := 0; k < 3; k++ {
			m := k
			for l := k + 1; l < len(best); l++ {
				if best[l].d < best[m].d {
					m = l
				}
			}
			best[k], best[m] = best[m], best[k]
			b := nodes[best[k].j]
			c := violet
			if i == 0 || best[k].j == 0 {
				c = teal
			}
			line(img, a.x, a.y, b.x, b.y, 0.0022*n, c, 0.55*(1-best[k].d/(0.6*n)))
		}
	}
	for i, p := range nodes {
		c := violet
		if i == 0 {
			c = teal
			disc(img, p.x, p.y, p.r*2.4, c, 0.18) // glow
		}
		disc(img, p.x, p.y, p.r, c, 1)
	}
	out := image.NewRGBA(image.Rect(0, 0, coverSize, coverSize))
	for y := 0; y < coverSize; y++ {
		for x := 0; x < coverSize; x++ {
			var r, g, b int
			for dy := 0; dy < coverScale; dy++ {
				for dx := 0; dx < coverScale; dx++ {
					c := img.RGBAAt(x*coverScale+dx, y*coverScale+dy)
					r, g, b = r+int(c.R), g+int(c.G), b+int(c.B)
				}
			}
			const k = coverScale * coverScale
			out.SetRGBA(x, y, color.RGBA{uint8(r / k), uint8(g / k), uint8(b / k), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: 88}); err != nil {
		return nil, fmt.Errorf("encode cover: %w", err)
	}
	return buf.Bytes(), nil
}

// blend mixes c into the pixel at (x, y) with opacity a.
func blend(img *image.RGBA, x, y int, c color.RGBA, a float64) {
	if !image.Pt(x, y).In(img.Rect) || a <= 0 {
		return
	}
	a = math.Min(a, 1)
	o := img.RGBAAt(x, y)
	mix := func(p, q uint8) uint8 { return uint8(float64(p)*(1-a) + float64(q)*a) }
	img.SetRGBA(x, y, color.RGBA{mix(o.R, c.R), mix(o.G, c.G), mix(o.B, c.B), 255})
}

// disc fills a circle.
func disc(img *image.RGBA, cx, cy, r float64, c color.RGBA, a float64) {
	for y := int(cy - r); y <= int(cy+r); y++ {
		for x := int(cx - r); x <= int(cx+r); x++ {
			if math.Hypot(float64(x)-cx, float64(y)-cy) <= r {
				blend(img, x, y, c, a)
			}
		}
	}
}

// line draws a segment of width w.
func line(img *image.RGBA, x0, y0, x1, y1, w float64, c color.RGBA, a float64) {
	steps := int(math.Hypot(x1-x0, y1-y0))
	for i := 0; i <= steps; i++ {
		t := float64(i) / float64(max(steps, 1))
		x, y := x0+(x1-x0)*t, y0+(y1-y0)*t
		for dy := -int(w); dy <= int(w); dy++ {
			for dx := -int(w); dx <= int(w); dx++ {
				if float64(dx*dx+dy*dy) <= w*w {
					blend(img, int(x)+dx, int(y)+dy, c, a/3) // overlapping steps add up
				}
			}
		}
	}
}
