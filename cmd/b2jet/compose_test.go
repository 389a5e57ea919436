package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// There is no Docker engine where the tests run, so this test checks docker-compose.yml and the
// Dockerfile against the code instead: the services, ports and cluster routes agree with each
// other, and every variable the workers are given is one that `b2jet worker` reads.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Build       struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

var natsServices = []string{"nats-1", "nats-2", "nats-3"}

const (
	natsClientPort  = "4222"
	natsClusterPort = "6222"
)

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(raw, &c))
	return c
}

// commandArgs turns a nats-server command line into flag -> value ("" for a bare flag).
func commandArgs(t *testing.T, cmd []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(cmd); i++ {
		require.True(t, strings.HasPrefix(cmd[i], "-"), "argument %q is not a flag", cmd[i])
		if i+1 < len(cmd) && !strings.HasPrefix(cmd[i+1], "-") {
			out[cmd[i]] = cmd[i+1]
			i++
		} else {
			out[cmd[i]] = ""
		}
	}
	return out
}

// flagDefault returns the default of the flag called name on node.
func flagDefault(t *testing.T, node *kong.Node, name string) string {
	t.Helper()
	for _, f := range node.Flags {
		if f.Name == name {
			return f.Default
		}
	}
	t.Fatalf("command %q has no flag --%s", node.Name, name)
	return ""
}

func TestComposeNATSCluster(t *testing.T) {
	c := loadCompose(t)
	clusterName := ""
	for _, name := range natsServices {
		svc, ok := c.Services[name]
		require.True(t, ok, "service %s is missing", name)
		assert.True(t, strings.HasPrefix(svc.Image, "nats:2."), "%s image %q", name, svc.Image)
		args := commandArgs(t, svc.Command)

		assert.Contains(t, args, "-js", "%s: JetStream enabled", name)
		assert.Equal(t, "/data", args["-sd"], "%s: store dir", name)
		assert.True(t, slices.ContainsFunc(svc.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }), "%s: /data is a volume", name)
		assert.Equal(t, name, args["-n"], "%s: server name", name)
		assert.Equal(t, "nats://0.0.0.0:"+natsClusterPort, args["--cluster"], "%s: cluster listen", name)

		if clusterName == "" {
			clusterName = args["--cluster_name"]
		}
		assert.NotEmpty(t, args["--cluster_name"], name)
		assert.Equal(t, clusterName, args["--cluster_name"], "%s: one cluster name", name)

		routes := strings.Split(args["--routes"], ",")
		for _, other := range natsServices {
			if other != name {
				assert.Contains(t, routes, "nats://"+other+":"+natsClusterPort, "%s routes to %s", name, other)
			}
		}
	}

	// Only nats-1's client port is published, on the port `b2jet request` uses by default.
	app := model(t)
	reqServer := flagDefault(t, command(t, app, "request"), "server")
	assert.Equal(t, "nats://127.0.0.1:"+natsClientPort, reqServer)
	assert.Equal(t, []string{natsClientPort + ":" + natsClientPort}, c.Services["nats-1"].Ports)
	assert.Empty(t, c.Services["nats-2"].Ports)
	assert.Empty(t, c.Services["nats-3"].Ports)
	// The embedded server of `make run` listens on the same port, so one request command fits both.
	assert.Equal(t, natsClientPort, flagDefault(t, command(t, app, "worker"), "embedded-port"))
}

func TestComposeWorkers(t *testing.T) {
	c := loadCompose(t)
	var workers []composeService
	replicas := 0
	for name, svc := range c.Services {
		if slices.Contains(natsServices, name) {
			continue
		}
		require.True(t, strings.HasPrefix(name, "worker"), "unexpected service %q", name)
		workers = append(workers, svc)
		replicas += max(svc.Deploy.Replicas, 1)
	}
	require.NotEmpty(t, workers)
	assert.GreaterOrEqual(t, replicas, 2, "two worker replicas")

	worker := command(t, model(t), "worker")
	readable := envNames(worker)
	drain, err := time.ParseDuration(flagDefault(t, worker, "drain-timeout"))
	require.NoError(t, err)

	for _, w := range workers {
		assert.Equal(t, "Dockerfile", w.Build.Dockerfile)
		assert.Equal(t, ".", w.Build.Context)
		for name := range w.Environment {
			assert.Contains(t, readable, name, "the worker is given %s, which it does not read", name)
		}

		urls := strings.Split(w.Environment["NATS_URL"], ",")
		for _, n := range natsServices {
			assert.Contains(t, urls, "nats://"+n+":"+natsClientPort, "NATS_URL lists %s", n)
			assert.Contains(t, w.DependsOn, n)
		}
		require.NoError(t, validateServers(w.Environment["NATS_URL"], "NATS_URL"))

		r, err := strconv.Atoi(w.Environment["B2JET_REPLICAS"])
		require.NoError(t, err)
		assert.Equal(t, 3, r, "streams at 3 replicas")
		assert.LessOrEqual(t, r, len(natsServices))

		// Credentials come from the environment and are required.
		required := regexp.MustCompile(`^\$\{(B2_APPLICATION_KEY_ID|B2_APPLICATION_KEY):\?.+\}$`)
		for _, name := range []string{"B2_APPLICATION_KEY_ID", "B2_APPLICATION_KEY"} {
			assert.Regexp(t, required, w.Environment[name], name)
			assert.True(t, strings.HasPrefix(w.Environment[name], "${"+name+":?"), name)
		}

		if w.StopGracePeriod != "" {
			grace, err := time.ParseDuration(w.StopGracePeriod)
			require.NoError(t, err)
			assert.Greater(t, grace, drain, "stop_grace_period leaves time to drain")
		}
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	text := string(raw)
	assert.Contains(t, text, `ENTRYPOINT ["/b2jet", "worker"]`)
	assert.Contains(t, text, "./cmd/b2jet")
	assert.Contains(t, text, "-X main.version=")
	assert.Regexp(t, `(?m)^USER nonroot`, text)

	// The build image's Go is the go.mod's.
	mod, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(mod))
	require.Len(t, m, 2)
	assert.Contains(t, text, fmt.Sprintf("FROM golang:%s AS build", m[1]))
}
