package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Grafana dashboard is checked against the worker's metrics registry: a query naming a
// metric or a label the worker does not export draws an empty panel and no error, so only a test
// notices.

const dashboardPath = "../../docs/grafana/b2jet.json"

type grafanaDashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Query      json.RawMessage    `json:"query"` // a string, or {"query": "..."}
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

// registeredMetrics returns the metric families of the worker's registry (the one its /metrics
// serves) with their variable labels. The client library exposes a descriptor's name and labels
// only through its String form, so it is parsed here; the test insists on finding the worker's
// own families, so a change of that form fails it instead of passing it.
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	re := regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^{}]*)\}\}$`)
	ch := make(chan *prometheus.Desc)
	go func() {
		newObserver().metrics.Registry.Describe(ch)
		close(ch)
	}()
	out := map[string][]string{}
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		require.NotNil(t, m, "unexpected descriptor form %s", d)
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		out[m[1]] = labels
	}
	require.Contains(t, out, "b2jet_requests_total")
	require.Equal(t, []string{"op", "account", "outcome"}, out["b2jet_requests_total"])
	return out
}

var (
	metricName    = regexp.MustCompile(`b2jet_[a-z0-9_]+`)
	selector      = regexp.MustCompile(`(b2jet_[a-z0-9_]+)\{([^}]*)\}`)
	matcherLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	grouping      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	variableRef   = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	labelValues   = regexp.MustCompile(`label_values\((b2jet_[a-z0-9_]+)(?:\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)`)
	seriesSuffix  = []string{"_bucket", "_sum", "_count"}
	datasourceUID = "${datasource}"
)

// family resolves a series name of a query to its metric family: the name itself, or a
// histogram's family without its _bucket, _sum or _count suffix. Descriptors do not tell a
// histogram from a counter, so the suffixes are accepted on any family: b2jet_requests_total_count
// would pass, a mistake this check leaves to the reader.
func family(families map[string][]string, name string) (fam string, bucket, ok bool) {
	if _, ok := families[name]; ok {
		return name, false, true
	}
	for _, s := range seriesSuffix {
		if base, cut := strings.CutSuffix(name, s); cut {
			if _, ok := families[base]; ok {
				return base, s == "_bucket", true
			}
		}
	}
	return "", false, false
}

// checkQuery reports every metric, label and variable of expr that does not exist.
func checkQuery(t *testing.T, where, expr string, families map[string][]string, variables []string, queried map[string]bool) {
	t.Helper()
	names := metricName.FindAllString(expr, -1)
	assert.NotEmpty(t, names, "%s: %q queries no b2jet metric", where, expr)
	var fams []string
	buckets := false
	for _, n := range names {
		fam, bucket, ok := family(families, n)
		if !assert.True(t, ok, "%s: %q queries %s, which the worker does not export", where, expr, n) {
			continue
		}
		fams = append(fams, fam)
		buckets = buckets || bucket
		queried[fam] = true
	}
	hasLabel := func(fam, label string, bucket bool) bool {
		return slices.Contains(families[fam], label) || (bucket && label == "le")
	}
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		fam, bucket, ok := family(families, m[1])
		if !ok {
			continue
		}
		for _, l := range matcherLabel.FindAllStringSubmatch(m[2], -1) {
			assert.True(t, hasLabel(fam, l[1], bucket), "%s: %q selects label %s, which %s does not have (%v)", where, expr, l[1], fam, families[fam])
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			for _, fam := range fams {
				assert.True(t, hasLabel(fam, l, buckets), "%s: %q groups by %s, which %s does not have (%v)", where, expr, l, fam, families[fam])
			}
		}
	}
	for _, v := range variableRef.FindAllStringSubmatch(expr, -1) {
		if !strings.HasPrefix(v[1], "__") { // Grafana's own, e.g. $__rate_interval
			assert.Contains(t, variables, v[1], "%s: %q uses $%s, which the dashboard does not define", where, expr, v[1])
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	assert.NotEmpty(t, d.UID)
	assert.NotEmpty(t, d.Title)
	families := registeredMetrics(t)
	queried := map[string]bool{}

	var variables []string
	for _, v := range d.Templating.List {
		variables = append(variables, v.Name)
	}
	require.Contains(t, variables, "datasource", "the data source is a variable, so the dashboard imports anywhere")
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			require.NoError(t, json.Unmarshal(v.Query, &q))
			assert.Equal(t, "prometheus", q, "variable %s", v.Name)
		case "query":
			var q string
			if json.Unmarshal(v.Query, &q) != nil {
				var obj struct{ Query string }
				require.NoError(t, json.Unmarshal(v.Query, &obj), "variable %s", v.Name)
				q = obj.Query
			}
			if assert.NotNil(t, v.Datasource, "variable %s", v.Name) {
				assert.Equal(t, datasourceUID, v.Datasource.UID, "variable %s", v.Name)
			}
			where := "variable " + v.Name
			checkQuery(t, where, q, families, variables, queried)
			for _, m := range labelValues.FindAllStringSubmatch(q, -1) {
				assert.Contains(t, families[m[1]], m[2], "%s: %s has no label %s", where, m[1], m[2])
			}
		}
	}

	ids := map[int]bool{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			assert.False(t, ids[p.ID], "panel id %d is unique", p.ID)
			ids[p.ID] = true
			where := "panel " + p.Title
			g := p.GridPos
			assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "%s: gridPos %+v", where, g)
			if p.Type != "row" {
				assert.NotEmpty(t, p.Targets, "%s has queries", where)
				if assert.NotNil(t, p.Datasource, where) {
					assert.Equal(t, datasourceUID, p.Datasource.UID, where)
				}
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				assert.False(t, refs[tg.RefID], "%s: refId %q is unique", where, tg.RefID)
				refs[tg.RefID] = true
				if tg.Datasource != nil {
					assert.Equal(t, datasourceUID, tg.Datasource.UID, where)
				}
				checkQuery(t, where, tg.Expr, families, variables, queried)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	// Every b2jet metric is on the dashboard: a new metric gets a panel, or this test says so.
	for name := range families {
		if strings.HasPrefix(name, "b2jet_") {
			assert.True(t, queried[name], "the dashboard does not show %s", name)
		}
	}
}
