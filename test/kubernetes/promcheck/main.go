// promcheck reads a Prometheus text exposition on stdin, parses it with the parser Prometheus' own
// libraries use (strict: a malformed line is an error), lints it with promlint (what `promtool check
// metrics` runs) and prints JSON: the families as parsed and the lint problems.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type sample struct {
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
	// Histograms: cumulative counts by upper bound, as written.
	Buckets map[string]uint64 `json:"buckets,omitempty"`
	Count   uint64            `json:"count,omitempty"`
}

type family struct {
	Type    string   `json:"type"`
	Help    string   `json:"help"`
	Samples []sample `json:"samples"`
}

func main() {
	model.NameValidationScheme = model.LegacyValidation
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := map[string]family{}
	var list []*dto.MetricFamily
	for name, mf := range families {
		list = append(list, mf)
		f := family{Type: mf.GetType().String(), Help: mf.GetHelp()}
		for _, m := range mf.GetMetric() {
			s := sample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.Value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.Value = m.GetGauge().GetValue()
			case m.Untyped != nil:
				s.Value = m.GetUntyped().GetValue()
			case m.Histogram != nil:
				h := m.GetHistogram()
				s.Value = h.GetSampleSum()
				s.Count = h.GetSampleCount()
				s.Buckets = map[string]uint64{}
				for _, b := range h.GetBucket() {
					s.Buckets[fmt.Sprint(b.GetUpperBound())] = b.GetCumulativeCount()
				}
			}
			f.Samples = append(f.Samples, s)
		}
		out[name] = f
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lint := []string{}
	for _, p := range problems {
		lint = append(lint, p.Metric+": "+p.Text)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"families": out, "lint": lint})
}
