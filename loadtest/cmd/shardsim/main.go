// Command shardsim plays 60 days of orders through the project's own routing
// (shard.Topology: request id to shard, residue-class order numbers, epochs)
// with a third shard added on day 20, purges orders older than 30 days, and
// charts each shard's share of the live rows over time. It shows what the
// sharding scheme promises: after a shard is added, new orders split three
// ways at once, old orders stay where they are, and the live data evens out
// by itself within 30 days, without moving a row.
//
//	go run ./loadtest/cmd/shardsim -out docs/images/shard-balance.png
package main

import (
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/orderflow/orderflow/shared/shard"
)

// hourlyShape is the share of a day's orders placed in each hour: quiet
// nights, a lunch peak and a larger dinner peak.
var hourlyShape = func() [24]float64 {
	var w [24]float64
	total := 0.0
	for h := range 24 {
		v := 0.2 + 3*math.Exp(-math.Pow(float64(h)-12, 2)/2) + 4*math.Exp(-math.Pow(float64(h)-18.5, 2)/3)
		if h < 7 {
			v *= 0.3
		}
		w[h] = v
		total += v
	}
	for h := range w {
		w[h] /= total
	}
	return w
}()

type options struct {
	days, addOn, retention, perDay int
	out                            string
}

func main() {
	var o options
	flag.IntVar(&o.days, "days", 60, "days to simulate")
	flag.IntVar(&o.addOn, "add-shard-on", 20, "the day the third shard is added")
	flag.IntVar(&o.retention, "retention", 30, "days an order stays on the shards")
	flag.IntVar(&o.perDay, "orders-per-day", 30000, "orders a day (the reference system takes 3,000,000; the shares do not depend on it)")
	flag.StringVar(&o.out, "out", "docs/images/shard-balance.png", "PNG chart to write")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "shardsim:", err)
		os.Exit(1)
	}
}

type liveOrder struct {
	day   int
	shard string
}

func run(o options) error {
	shares, err := simulate(o)
	if err != nil {
		return err
	}
	return chart(o, shares)
}

// simulate returns, per shard, the share (%) of live rows at the end of
// every day.
func simulate(o options) (map[string]plotter.XYs, error) {
	topo := shard.Topology{
		Shards: []shard.Spec{{Name: "shard-0", DSN: "-"}, {Name: "shard-1", DSN: "-"}, {Name: "shard-2", DSN: "-"}},
		Epochs: []shard.Epoch{{FirstOrderNo: 1, Shards: []string{"shard-0", "shard-1"}}},
	}
	next := map[string]int64{} // next number per shard in the current epoch, as order_no_sequence holds it
	var live []liveOrder
	shares := map[string]plotter.XYs{}
	handedOut := int64(0)
	fmt.Printf("| day | shard-0 | shard-1 | shard-2 | live rows |\n|---|---|---|---|---|\n")
	for day := 0; day < o.days; day++ {
		if day == o.addOn {
			// orderctl shards add: a new epoch above every number handed out.
			topo.Epochs = append(topo.Epochs, shard.Epoch{FirstOrderNo: handedOut + 1_000_000, Shards: []string{"shard-0", "shard-1", "shard-2"}})
			next = map[string]int64{}
		}
		for h := range 24 {
			n := int(math.Round(float64(o.perDay) * hourlyShape[h]))
			for i := range n {
				loc := topo.PlaceRequest(fmt.Sprintf("d%d-h%d-%d", day, h, i))
				nr, err := topo.Numbers(loc)
				if err != nil {
					return nil, err
				}
				no, ok := next[loc.Shard]
				if !ok {
					no = nr.First
				}
				next[loc.Shard] = no + nr.Step
				if routed, err := topo.Route(no); err != nil || routed.Shard != loc.Shard {
					return nil, fmt.Errorf("order %d was placed on %s but routes to %s", no, loc.Shard, routed.Shard)
				}
				handedOut = max(handedOut, no)
				live = append(live, liveOrder{day: day, shard: loc.Shard})
			}
		}
		// orderctl orders purge: drop what is older than the retention.
		kept := live[:0]
		for _, l := range live {
			if day-l.day < o.retention {
				kept = append(kept, l)
			}
		}
		live = kept
		counts := map[string]int{}
		for _, l := range live {
			counts[l.shard]++
		}
		for _, s := range topo.Names() {
			shares[s] = append(shares[s], plotter.XY{X: float64(day + 1), Y: 100 * float64(counts[s]) / float64(len(live))})
		}
		if (day+1)%5 == 0 || day == o.addOn {
			fmt.Printf("| %d | %.1f %% | %.1f %% | %.1f %% | %d |\n", day+1, 100*float64(counts["shard-0"])/float64(len(live)),
				100*float64(counts["shard-1"])/float64(len(live)), 100*float64(counts["shard-2"])/float64(len(live)), len(live))
		}
	}
	return shares, nil
}

func chart(o options, shares map[string]plotter.XYs) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Share of live orders per shard (shard-2 added on day %d, %d-day retention)", o.addOn, o.retention)
	p.X.Label.Text = "day"
	p.Y.Label.Text = "% of live rows"
	p.Y.Min, p.Y.Max = 0, 60
	p.Add(plotter.NewGrid())
	colors := []color.Color{color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255}, color.RGBA{R: 44, G: 160, B: 44, A: 255}}
	for i, name := range []string{"shard-0", "shard-1", "shard-2"} {
		line, err := plotter.NewLine(shares[name])
		if err != nil {
			return err
		}
		line.Color = colors[i]
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add(name, line)
	}
	p.Legend.Top = true
	return p.Save(10*vg.Inch, 5*vg.Inch, o.out)
}
