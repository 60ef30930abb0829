package web

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// The project page's chart: build and test duration, and the delivered
// image's size, over the project's recent finished runs. It is an inline
// SVG written here (no script, no external file): the upper panel has a
// pair of bars per run (build, test), the lower one a line through the
// sizes of the runs that delivered. Every bar and point has a <title> (a
// tooltip and what a screen reader says), and the <svg> has a title and a
// description that sums the chart up in words. Colours are presentation
// attributes, not style, so the page's Content-Security-Policy holds.

const (
	chartW      = 640
	chartLeft   = 64 // room for the axis labels
	chartRight  = 8
	panelH      = 110
	panelGap    = 34
	chartTop    = 14
	chartBottom = 22 // room for the run numbers
	buildColour = "#4c78a8"
	testColour  = "#f58518"
	sizeColour  = "#54a24b"
	axisColour  = "#888"
)

// chartPoint is one run on the chart.
type chartPoint struct {
	id          string
	build, test time.Duration // 0: the stage did not run
	size        int64         // 0: nothing delivered
}

// runChart draws runs (newest first, as the page lists them); it returns
// "" when fewer than two finished runs have a duration to show.
func runChart(runs []*store.Run) template.HTML {
	var pts []chartPoint
	for _, r := range runs {
		if !r.State.Done() {
			continue
		}
		p := chartPoint{id: r.ID, build: ranFor(r, "build"), test: ranFor(r, "test"), size: r.ImageSize}
		if p.build > 0 || p.test > 0 {
			pts = append(pts, p)
		}
	}
	if len(pts) < 2 {
		return ""
	}
	slices.Reverse(pts) // oldest left

	var maxDur time.Duration
	var maxSize int64
	for _, p := range pts {
		maxDur = max(maxDur, p.build, p.test)
		maxSize = max(maxSize, p.size)
	}
	maxDur = niceDuration(maxDur)

	var b strings.Builder
	esc := template.HTMLEscapeString
	height := chartTop + panelH + panelGap + panelH + chartBottom
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="chart-title chart-desc">`+"\n",
		chartW, height, chartW, height)
	fmt.Fprintf(&b, `<title id="chart-title">Build and test duration and image size of the last %d runs</title>`+"\n", len(pts))
	fmt.Fprintf(&b, `<desc id="chart-desc">%s</desc>`+"\n", esc(describe(pts)))

	plotW := float64(chartW - chartLeft - chartRight)
	slot := plotW / float64(len(pts))
	barW := max(1, slot*0.35)
	x0 := func(i int) float64 { return float64(chartLeft) + slot*float64(i) }

	// Durations.
	top := float64(chartTop)
	yDur := func(d time.Duration) float64 {
		return top + panelH - float64(panelH)*d.Seconds()/maxDur.Seconds()
	}
	axis(&b, top, "duration", human(maxDur), "0s")
	legend(&b, top-4, []legendItem{{"build", buildColour}, {"test", testColour}})
	for i, p := range pts {
		for j, s := range []struct {
			name   string
			d      time.Duration
			colour string
		}{{"build", p.build, buildColour}, {"test", p.test, testColour}} {
			if s.d <= 0 {
				continue
			}
			y := yDur(s.d)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>run #%s: %s %s</title></rect>`+"\n",
				x0(i)+slot*0.12+float64(j)*barW, y, barW, top+panelH-y, s.colour, esc(p.id), s.name, human(s.d))
		}
	}

	// Image sizes.
	top2 := top + panelH + panelGap
	if maxSize > 0 {
		maxSize = niceBytes(maxSize)
		ySize := func(n int64) float64 { return top2 + panelH - float64(panelH)*float64(n)/float64(maxSize) }
		axis(&b, top2, "image size", humanBytes(maxSize), "0 B")
		legend(&b, top2-4, []legendItem{{"image size", sizeColour}})
		var line []string
		for i, p := range pts {
			if p.size > 0 {
				line = append(line, fmt.Sprintf("%.1f,%.1f", x0(i)+slot/2, ySize(p.size)))
			}
		}
		if len(line) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(line, " "), sizeColour)
		}
		for i, p := range pts {
			if p.size > 0 {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>run #%s: image %s</title></circle>`+"\n",
					x0(i)+slot/2, ySize(p.size), sizeColour, esc(p.id), humanBytes(p.size))
			}
		}
	} else {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="12" fill="%s">No delivered image among these runs.</text>`+"\n",
			chartLeft, top2+panelH/2, axisColour)
	}

	// Run numbers, at most about 15 of them.
	step := (len(pts) + 14) / 15
	for i := len(pts) - 1; i >= 0; i -= step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="%s">#%s</text>`+"\n",
			x0(i)+slot/2, height-6, axisColour, esc(pts[i].id))
	}
	b.WriteString("</svg>")
	// Every value written above is a number, a fixed word or escaped.
	return template.HTML(b.String())
}

// ranFor is how long stage ran in r; 0 when it did not finish.
func ranFor(r *store.Run, stage string) time.Duration {
	st, ok := stageOf(r, stage)
	if !ok || st.Started.IsZero() || st.Finished.IsZero() || st.State == store.Skipped {
		return 0
	}
	return st.Finished.Sub(st.Started)
}

// axis draws a panel's baseline, its top and bottom labels and its name.
func axis(b *strings.Builder, top float64, name, maxLabel, zero string) {
	bottom := top + panelH
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", chartLeft, bottom, chartW-chartRight, bottom, axisColour)
	fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-dasharray="2 3"/>`+"\n", chartLeft, top, chartW-chartRight, top, axisColour)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="%s">%s</text>`+"\n", chartLeft-4, top+4, axisColour, maxLabel)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="%s">%s</text>`+"\n", chartLeft-4, bottom, axisColour, zero)
	fmt.Fprintf(b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="%s">%s</text>`+"\n", chartLeft-4, top+panelH/2+4, axisColour, name)
}

type legendItem struct{ name, colour string }

func legend(b *strings.Builder, y float64, items []legendItem) {
	x := chartW - chartRight - 90*len(items)
	for _, it := range items {
		fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="10" height="10" fill="%s"/><text x="%d" y="%.1f" font-size="11" fill="%s">%s</text>`+"\n",
			x, y-9, it.colour, x+14, y, axisColour, it.name)
		x += 90
	}
}

// describe sums the chart up in a sentence or three.
func describe(pts []chartPoint) string {
	last := pts[len(pts)-1]
	var parts []string
	if last.build > 0 {
		parts = append(parts, "build "+human(last.build))
	}
	if last.test > 0 {
		parts = append(parts, "test "+human(last.test))
	}
	if last.size > 0 {
		parts = append(parts, "image "+humanBytes(last.size))
	}
	s := fmt.Sprintf("Runs #%s to #%s. Newest run #%s: %s.", pts[0].id, last.id, last.id, strings.Join(parts, ", "))
	var longest chartPoint
	for _, p := range pts {
		if p.build > longest.build {
			longest = p
		}
	}
	if longest.build > 0 {
		s += fmt.Sprintf(" Longest build: run #%s, %s.", longest.id, human(longest.build))
	}
	return s
}

// niceDuration rounds d up to a round axis maximum.
func niceDuration(d time.Duration) time.Duration {
	for _, n := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		if d <= n {
			return n
		}
	}
	return d.Round(time.Hour) + time.Hour
}

// niceBytes rounds n up to 1, 2 or 5 times ten to a power, in B, KiB,
// MiB, GiB or TiB.
func niceBytes(n int64) int64 {
	for _, unit := range []int64{1, 1 << 10, 1 << 20, 1 << 30, 1 << 40} {
		for _, m := range []int64{1, 2, 5, 10, 20, 50, 100, 200, 500} {
			if m*unit >= n {
				return m * unit
			}
		}
	}
	return n
}
