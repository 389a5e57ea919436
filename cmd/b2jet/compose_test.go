package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// There is no Docker engine where the tests run, so these tests check docker-compose.yml and the
// Dockerfile against the code instead: the services, ports and cluster routes agree with each
// other, and every variable the workers are given is one that `b2jet worker` reads. The nodes'
// configuration file is run for real, by a nats-server process (compose_e2e_test.go).

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
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Build struct {
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
	natsMonitorPort = "8222"

	// composeNATSConf is the nodes' configuration file, from the repository root, and where they
	// mount it.
	composeNATSConf  = "deploy/nats.conf"
	composeNATSMount = "/etc/nats/nats.conf"
)

// composePasswords are the variables of the NATS users' passwords: the compose file requires
// each (${VAR:?...}) and hands it to the nodes, whose configuration refers to it as $VAR.
var composePasswords = map[string]string{"b2jet": "WORKER_PASS", "ops": "OPS_PASS", "acme": "ACME_PASS"}

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

		// JetStream, its fsync policy and the users are in the configuration file.
		assert.Equal(t, composeNATSMount, args["-c"], "%s: configuration file", name)
		assert.Contains(t, svc.Volumes, "./"+composeNATSConf+":"+composeNATSMount+":ro", "%s mounts %s", name, composeNATSConf)
		assert.Equal(t, "/data", args["-sd"], "%s: store dir", name)
		assert.True(t, slices.ContainsFunc(svc.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }), "%s: /data is a volume", name)
		assert.Contains(t, svc.Healthcheck.Test, "http://127.0.0.1:"+natsMonitorPort+"/healthz", name)
		for _, v := range composePasswords {
			assert.True(t, strings.HasPrefix(svc.Environment[v], "${"+v+":?"), "%s: %s is required, not %q", name, v, svc.Environment[v])
		}
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

// composeNATSOptions parses the nodes' configuration file as nats-server does, with the
// password variables set to "<user>-pass".
func composeNATSOptions(t *testing.T) *server.Options {
	t.Helper()
	for user, v := range composePasswords {
		t.Setenv(v, user+"-pass")
	}
	opts, err := server.ProcessConfigFile(filepath.Join("..", "..", composeNATSConf))
	require.NoError(t, err)
	return opts
}

// The nodes fsync every write, listen where the compose file expects them to, and have the
// README's users (with its example tenant acme alone), each password from its variable.
func TestComposeNATSConfig(t *testing.T) {
	opts := composeNATSOptions(t)
	assert.True(t, opts.JetStream)
	assert.True(t, opts.SyncAlways, "sync_interval: always")
	assert.Empty(t, opts.StoreDir, "the store dir is on the command line, which cannot override one in the file")
	assert.Equal(t, natsClientPort, strconv.Itoa(opts.Port))
	assert.Equal(t, natsMonitorPort, strconv.Itoa(opts.HTTPPort))

	readme := &server.Options{}
	require.NoError(t, readme.ProcessConfigString(readmePermissions))
	want := map[string]*server.User{}
	for _, u := range readme.Users {
		want[u.Username] = u
	}
	got := map[string]string{}
	for _, u := range opts.Users {
		got[u.Username] = u.Password
		w, ok := want[u.Username]
		if assert.True(t, ok, "user %s is not in the README's block", u.Username) {
			assert.Equal(t, w.Permissions, u.Permissions, "%s's permissions differ from the README's", u.Username)
		}
	}
	wantPass := map[string]string{}
	for user := range composePasswords {
		wantPass[user] = user + "-pass"
	}
	assert.Equal(t, wantPass, got, "the users and their passwords, read from the environment")
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

		// The workers connect as the configuration file's worker user.
		assert.Equal(t, "b2jet", w.Environment["NATS_USER"])
		assert.True(t, strings.HasPrefix(w.Environment["NATS_PASSWORD"], "${"+composePasswords["b2jet"]+":?"), w.Environment["NATS_PASSWORD"])

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
