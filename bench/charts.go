package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	serviceColor  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	baselineColor = color.RGBA{R: 0xbb, G: 0xbb, B: 0xbb, A: 0xff}
	createColor   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// writeCharts draws the PNG charts into -out and returns their file names.
func (b *bench) writeCharts() ([]string, error) {
	var written []string
	var pairs []*Result
	for _, r := range b.report.Results {
		if r.Kind == "scenario" && r.Baseline != "" && b.find(r.Baseline) != nil {
			pairs = append(pairs, r)
		}
	}
	if len(pairs) > 0 {
		rate := func(r *Result) float64 { return r.RPS }
		if err := b.pairChart("throughput.png", "Throughput: the service next to its baseline", "requests (operations) per second, log scale", pairs, rate, true); err != nil {
			return written, err
		}
		written = append(written, "throughput.png")
		p99 := func(r *Result) float64 { return r.P99 }
		if err := b.pairChart("p99.png", "p99 latency: the service next to its baseline", "milliseconds, log scale", pairs, p99, false); err != nil {
			return written, err
		}
		written = append(written, "p99.png")
	}
	if rows := b.seriesRows(); len(rows) > 0 {
		if err := b.seriesChart("organizations.png", rows); err != nil {
			return written, err
		}
		written = append(written, "organizations.png")
	}
	return written, nil
}

// pairChart draws, for each scenario, a bar of value(scenario) next to a
// bar of value(baseline), on a log scale, with the throughput ratio above.
func (b *bench) pairChart(file, title, ylabel string, pairs []*Result, value func(*Result) float64, ratios bool) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	names := make([]string, len(pairs))
	svc := make([]float64, len(pairs))
	base := make([]float64, len(pairs))
	var labels plotter.XYLabels
	for i, r := range pairs {
		names[i] = r.Name
		svc[i], base[i] = value(r), value(b.find(r.Baseline))
		if ratios {
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: math.Max(svc[i], base[i]) * 1.4})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f", r.Ratio))
		}
	}
	width := vg.Points(14)
	s := &logBars{values: svc, width: width, offset: -width / 2, color: serviceColor}
	bl := &logBars{values: base, width: width, offset: width / 2, color: baselineColor}
	p.Add(s, bl)
	if ratios {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = -0.5
			l.TextStyle[i].Font.Size = vg.Points(9)
		}
		p.Add(l)
	}
	lo, hi := logRange(append(append([]float64{}, svc...), base...))
	if ratios {
		hi *= 4 // room for the labels
	}
	p.Y.Min, p.Y.Max = lo, hi
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Add("orgsvc", s)
	p.Legend.Add("baseline", bl)
	p.Legend.Top = true
	return p.Save(vg.Length(max(8, 1.1*float64(len(pairs))))*vg.Inch, 4.5*vg.Inch, filepath.Join(b.opts.out, file))
}

// seriesChart draws org-get and org-create p50 against the number of
// organizations.
func (b *bench) seriesChart(file string, rows []seriesRow) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("p50 latency against organizations present (BCRYPT_COST=%d)", b.report.SeriesBcryptCost)
	p.X.Label.Text = "organizations, log scale"
	p.Y.Label.Text = "p50, milliseconds, log scale"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var all []float64
	var get, create, getRef, createRef plotter.XYs
	refLevel := 0
	for _, r := range rows {
		get = append(get, plotter.XY{X: float64(r.level), Y: r.get.P50})
		create = append(create, plotter.XY{X: float64(r.level), Y: r.create.P50})
		all = append(all, r.get.P50, r.create.P50)
		// The reference's medians, drawn at the level they were measured
		// beside: how much of a level's change the machine made.
		for _, x := range []struct {
			r   *Result
			xys *plotter.XYs
		}{{r.get, &getRef}, {r.create, &createRef}} {
			if ref := b.find(x.r.Reference); x.r.Reference != "" && ref != nil {
				*x.xys = append(*x.xys, plotter.XY{X: float64(r.level), Y: ref.P50})
				all = append(all, ref.P50)
				refLevel = ref.Organizations
			}
		}
	}
	refLabel := fmt.Sprintf(", service at %d in turns", refLevel)
	for _, s := range []struct {
		name   string
		xys    plotter.XYs
		c      color.Color
		dashed bool
	}{{"org-get", get, serviceColor, false}, {"org-create", create, createColor, false},
		{"org-get" + refLabel, getRef, serviceColor, true}, {"org-create" + refLabel, createRef, createColor, true}} {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return err
		}
		l.Color, pts.Color = s.c, s.c
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			pts.Shape = draw.CircleGlyph{}
		}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.Y.Min, p.Y.Max = logRange(all)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), -vg.Points(32) // clear of the title and the axis
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(b.opts.out, file))
}

// logRange rounds the positive values' range out to powers of ten.
func logRange(values []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, v := range values {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if hi == 0 {
		return 1, 10
	}
	return math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
}

// logBars is a bar chart for a log-scaled Y axis: each bar rises from the
// bottom of the axis (a log scale has no zero), one bar per nominal X.
type logBars struct {
	values []float64
	width  vg.Length
	offset vg.Length
	color  color.Color
}

func (b *logBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	bottom := trY(p.Y.Min)
	for i, v := range b.values {
		if v <= 0 {
			continue
		}
		x := trX(float64(i)) + b.offset
		top := trY(math.Max(v, p.Y.Min))
		pts := []vg.Point{{X: x - b.width/2, Y: bottom}, {X: x - b.width/2, Y: top}, {X: x + b.width/2, Y: top}, {X: x + b.width/2, Y: bottom}}
		c.FillPolygon(b.color, c.ClipPolygonY(pts))
	}
}

func (b *logBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = -0.5, float64(len(b.values))-0.5
	ymin, ymax = logRange(b.values)
	return
}

func (b *logBars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(b.color, c.ClipPolygonY(pts))
}
