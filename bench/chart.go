package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
)

// chartColors are distinguishable on white and in grey print.
var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// WriteChart draws the report as an SVG line chart of median MB/s against
// sink parallelism, one line per chunk size; where compression or part size
// were swept too, each point of a line is the best of them. Each chunk
// size's bus ceiling is a dashed line of the same colour.
func (r *Report) WriteChart(w io.Writer) error {
	c := newChart(r)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
`, chartWidth, chartHeight, chartWidth, chartHeight)
	c.writeTitle(&b, r)
	c.writeAxes(&b)
	for ci, chunk := range c.chunks {
		c.writeSeries(&b, r, ci, chunk)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// The chart's size and margins, in pixels.
const (
	chartWidth, chartHeight = 760, 440
	left, right, top, bott  = 70, 170, 50, 60
	plotW, plotH            = chartWidth - left - right, chartHeight - top - bott
)

// chart is what WriteChart draws: the best median MB/s of each chunk size
// (a line) at each parallelism (the x axis).
type chart struct {
	pars       []int
	chunks     []int64
	best       map[[2]int64]float64 // {chunk, parallelism} → MB/s
	yTop, step float64
}

func newChart(r *Report) *chart {
	c := &chart{best: map[[2]int64]float64{}}
	yMax := 0.0
	for _, p := range r.Points {
		if len(p.Runs) == 0 {
			continue
		}
		if !slices.Contains(c.pars, p.Parallelism) {
			c.pars = append(c.pars, p.Parallelism)
		}
		if !slices.Contains(c.chunks, p.ChunkSize) {
			c.chunks = append(c.chunks, p.ChunkSize)
		}
		k := [2]int64{p.ChunkSize, int64(p.Parallelism)}
		c.best[k] = max(c.best[k], p.MBps.Median)
		yMax = max(yMax, p.MBps.Median, p.CeilingMBps)
	}
	slices.Sort(c.pars)
	slices.Sort(c.chunks)
	c.step = niceStep(yMax / 5)
	c.yTop = c.step * math.Ceil(yMax/c.step)
	if c.yTop <= 0 {
		c.yTop, c.step = 1, 0.2
	}
	return c
}

// x is the position of the i-th parallelism; pad keeps the end points off
// the axis.
func (c *chart) x(i int) float64 {
	const pad = 30
	if len(c.pars) == 1 {
		return left + plotW/2
	}
	return left + pad + float64(i)*(plotW-2*pad)/float64(len(c.pars)-1)
}

func (c *chart) y(v float64) float64 { return top + plotH - v/c.yTop*plotH }

func (c *chart) writeTitle(b *strings.Builder, r *Report) {
	title := "Throughput against sink parallelism, one line per bus chunk size"
	sub := fmt.Sprintf("median MB/s of %s", plural(r.Runs, "run", "runs"))
	var over []string
	if slices.Contains(r.Swept, "compression") {
		over = append(over, "compression")
	}
	if slices.Contains(r.Swept, "part_size") {
		over = append(over, "part size")
	}
	if len(over) > 0 {
		sub += "; each point the best over " + strings.Join(over, " and ")
	}
	sub += "; dashed: the bus alone"
	fmt.Fprintf(b, "<text x=\"%d\" y=\"20\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", left, esc(title))
	fmt.Fprintf(b, "<text x=\"%d\" y=\"38\" fill=\"#555\">%s</text>\n", left, esc(sub))
}

// writeAxes draws the grid, the axes and their labels.
func (c *chart) writeAxes(b *strings.Builder) {
	for v := 0.0; v <= c.yTop+c.step/2; v += c.step {
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, c.y(v), left+plotW, c.y(v))
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left-6, c.y(v)+4, trimFloat(v))
	}
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", left, top+plotH, left+plotW, top+plotH)
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", left, top, left, top+plotH)
	for i, p := range c.pars {
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", c.x(i), top+plotH+18, p)
	}
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">sink parallelism</text>\n", left+plotW/2, chartHeight-18)
	fmt.Fprintf(b, "<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">MB/s</text>\n", top+plotH/2)
}

// writeSeries draws the ci-th chunk size's line, its points, its ceiling
// (dashed) and its legend entry.
func (c *chart) writeSeries(b *strings.Builder, r *Report, ci int, chunk int64) {
	color := chartColors[ci%len(chartColors)]
	var pts []string
	for i, p := range c.pars {
		if v, ok := c.best[[2]int64{chunk, int64(p)}]; ok {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(i), c.y(v)))
		}
	}
	fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", color, strings.Join(pts, " "))
	for i, p := range c.pars {
		if v, ok := c.best[[2]int64{chunk, int64(p)}]; ok {
			fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%s</title></circle>\n",
				c.x(i), c.y(v), color, esc(fmt.Sprintf("chunk %s, parallelism %d: %.1f MB/s", pipeline.ExactSize(chunk), p, v)))
		}
	}
	for _, cr := range r.Ceilings {
		if cr.ChunkSize == chunk && cr.MBps.Median > 0 {
			fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"6 4\"><title>%s</title></line>\n",
				left, c.y(cr.MBps.Median), left+plotW, c.y(cr.MBps.Median), color,
				esc(fmt.Sprintf("bus alone, chunk %s: %.1f MB/s", pipeline.ExactSize(chunk), cr.MBps.Median)))
		}
	}
	ly := top + 10 + ci*20
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", left+plotW+16, ly, left+plotW+40, ly, color)
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">chunk %s</text>\n", left+plotW+46, ly+4, esc(pipeline.ExactSize(chunk)))
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func esc(s string) string { return html.EscapeString(s) }
