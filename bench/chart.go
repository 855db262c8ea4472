package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
)

// chart draws the ratios of the targets table as an SVG bar chart: one bar
// per row, from 1× to the ratio on a log scale, so that 2× and 0.5× are as
// long, right meaning Sluice is better. Memory, where less is better, is
// drawn as Redis over Sluice. A tick marks each row's target; the bar is
// green where it is met and red where it is missed.
func (r *report) chart() []byte {
	type bar struct {
		label         string
		value, target float64
		met           bool
	}
	var bars []bar
	for _, row := range r.rows() {
		if row.ratio <= 0 {
			continue
		}
		b := bar{label: row.chartLabel, value: row.ratio, target: row.min, met: row.met}
		if row.atMost {
			b.label += " (Redis/Sluice)"
			b.value, b.target = 1/row.ratio, 1/row.min
		}
		bars = append(bars, b)
	}

	lo, hi := 0.5, 4.0
	for _, b := range bars {
		for lo > b.value/1.25 || lo > b.target/1.25 {
			lo /= 2
		}
		for hi < b.value*1.25 || hi < b.target*1.25 {
			hi *= 2
		}
	}
	const (
		width, labelW, rightPad = 760, 230, 70
		rowH, top, bottom       = 30, 56, 30
	)
	plotW := float64(width - labelW - rightPad)
	x := func(v float64) float64 {
		return labelW + plotW*(math.Log2(v)-math.Log2(lo))/(math.Log2(hi)-math.Log2(lo))
	}
	height := top + rowH*len(bars) + bottom

	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="20" font-size="14" font-weight="bold">Sluice / baseline, medians of the same run (right of 1× is better for Sluice)</text>`+"\n", 10)
	p(`<text x="%d" y="38" fill="#555">| marks the target; green where it is met, red where it is missed (throughput, or p99 where the target names it)</text>`+"\n", 10)
	for v := lo; v <= hi*1.001; v *= 2 {
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x(v), top-5, x(v), height-bottom+5, gridColor(v))
		p(`<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s×</text>`+"\n", x(v), height-bottom+18, trim(v))
	}
	for i, br := range bars {
		y := top + i*rowH
		color := "#c0392b"
		if br.met {
			color = "#2e8b57"
		}
		x0, x1 := x(1), x(br.value)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		p(`<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+rowH/2+4, escape(br.label))
		p(`<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y+6, math.Max(x1-x0, 1), rowH-12, color)
		tx := x(br.target)
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>`+"\n", tx, y+2, tx, y+rowH-2)
		p(`<text x="%.1f" y="%d">%.2f×</text>`+"\n", math.Max(x(br.value), x(1))+6, y+rowH/2+4, br.value)
	}
	p("</svg>\n")
	return b.Bytes()
}

func gridColor(v float64) string {
	if v == 1 {
		return "#333"
	}
	return "#ddd"
}

// trim writes a power of two without trailing zeros: 0.25, 0.5, 1, 2.
func trim(v float64) string { return fmt.Sprintf("%g", v) }

func escape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
