package main

import (
	"encoding/base64"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/b2jet/b2jet/worker"
)

// No Kubernetes cluster (nor KEDA) runs where the tests run, so these tests hold the manifests of
// docs/kubernetes to the code instead: the Deployment's arguments and variables are flags the
// worker parses, its accounts file and key files load as the worker loads them, its probes are
// paths the worker's HTTP endpoint serves, its grace period outlasts the drain, and KEDA's
// triggers name exactly the consumers the worker creates. A trigger naming a consumer that does
// not exist is the costly mistake: KEDA then reads the stream's last sequence as the lag and
// scales to the maximum.

const kubeDir = "../../docs/kubernetes"

// kubeManifests are the objects of the files the kustomization lists.
type kubeManifests struct {
	objects []kubeObject
}

type kubeObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	file string
	node *yaml.Node
}

// loadKube reads every manifest of docs/kubernetes through kustomization.yaml, which must list
// every other YAML file of the directory.
func loadKube(t *testing.T) *kubeManifests {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(kubeDir, "kustomization.yaml"))
	require.NoError(t, err)
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &kust))
	files, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	require.NoError(t, err)
	var listed []string
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			listed = append(listed, base)
		}
	}
	assert.ElementsMatch(t, listed, kust.Resources, "kustomization.yaml lists every manifest")

	m := &kubeManifests{}
	for _, name := range kust.Resources {
		f, err := os.Open(filepath.Join(kubeDir, name))
		require.NoError(t, err)
		dec := yaml.NewDecoder(f)
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == io.EOF {
				break
			}
			require.NoError(t, err, name)
			var o kubeObject
			require.NoError(t, n.Decode(&o), name)
			require.NotEmpty(t, o.Kind, "%s: a document without kind", name)
			o.file, o.node = name, &n
			m.objects = append(m.objects, o)
		}
		require.NoError(t, f.Close())
	}
	return m
}

// get decodes the object of kind and name into v.
func (m *kubeManifests) get(t *testing.T, kind, name string, v any) {
	t.Helper()
	for _, o := range m.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			require.NoError(t, o.node.Decode(v), "%s %s", kind, name)
			return
		}
	}
	t.Fatalf("docs/kubernetes has no %s %q", kind, name)
}

// only decodes the one object of kind into v and returns its name.
func (m *kubeManifests) only(t *testing.T, kind string, v any) string {
	t.Helper()
	var found []kubeObject
	for _, o := range m.objects {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	require.Len(t, found, 1, "one %s in docs/kubernetes", kind)
	require.NoError(t, found[0].node.Decode(v))
	return found[0].Metadata.Name
}

// configData returns the files of a ConfigMap (data) or a Secret (stringData and data).
func (m *kubeManifests) configData(t *testing.T, kind, name string) map[string]string {
	t.Helper()
	var obj struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	m.get(t, kind, name, &obj)
	out := map[string]string{}
	for k, v := range obj.Data {
		if kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(v)
			require.NoError(t, err, "Secret %s: data.%s is base64", name, k)
			v = string(b)
		}
		out[k] = v
	}
	maps.Copy(out, obj.StringData) // the API server lets stringData win
	return out
}

type kubeDeployment struct {
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec kubePodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type kubePodSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []kubeContainer `yaml:"containers"`
	Volumes    []kubeVolume    `yaml:"volumes"`
}

type kubeContainer struct {
	Name    string   `yaml:"name"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *kubeProbe `yaml:"livenessProbe"`
	ReadinessProbe *kubeProbe `yaml:"readinessProbe"`
	StartupProbe   *kubeProbe `yaml:"startupProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec any `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type kubeProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a number or a container port's name
	} `yaml:"httpGet"`
}

type kubeVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string `yaml:"name"`
		Items []any  `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string `yaml:"secretName"`
		DefaultMode *int   `yaml:"defaultMode"`
		Items       []any  `yaml:"items"`
	} `yaml:"secret"`
}

type kubeScaledObject struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount *int `yaml:"minReplicaCount"`
		MaxReplicaCount *int `yaml:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// kubeWorker is the Deployment's worker container, with the worker configuration its arguments
// and variables give.
type kubeWorker struct {
	m      *kubeManifests
	name   string // the Deployment's
	dep    kubeDeployment
	pod    kubePodSpec
	c      kubeContainer
	env    map[string]string // the container's variables, secrets resolved
	worker *WorkerCmd
}

// loadKubeWorker parses the Deployment's container as the b2jet command would: its variables
// set (and every other variable the CLI reads unset), `worker` followed by its args (the
// image's entrypoint is `/b2jet worker`, checked by TestDockerfile).
func loadKubeWorker(t *testing.T) *kubeWorker {
	t.Helper()
	kw := &kubeWorker{m: loadKube(t), env: map[string]string{}}
	kw.name = kw.m.only(t, "Deployment", &kw.dep)
	kw.pod = kw.dep.Spec.Template.Spec
	require.Len(t, kw.pod.Containers, 1, "one container: the worker")
	kw.c = kw.pod.Containers[0]
	assert.Empty(t, kw.c.Command, "the image's entrypoint runs `b2jet worker`")

	clearEnv(t)
	for _, e := range kw.c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			ref := e.ValueFrom.SecretKeyRef
			require.NotNil(t, ref, "%s: only secretKeyRef is modelled", e.Name)
			data := kw.m.configData(t, "Secret", ref.Name)
			require.Contains(t, data, ref.Key, "%s: Secret %s has key %s", e.Name, ref.Name, ref.Key)
			v = data[ref.Key]
		}
		kw.env[e.Name] = v
		t.Setenv(e.Name, v)
	}
	var cli CLI
	parser, err := newParser(&cli, io.Discard, io.Discard, func(int) { t.Fatal("kong wanted to exit") })
	require.NoError(t, err)
	_, err = parser.Parse(append([]string{"worker"}, kw.c.Args...))
	require.NoError(t, err, "the Deployment's args are flags of b2jet worker")
	kw.worker = &cli.Worker
	return kw
}

// mount writes the files the container's volumes hold under root, at their mount paths, and
// returns what turns a path in the container into the path of its copy under root.
func (kw *kubeWorker) mount(t *testing.T, root string) *strings.Replacer {
	t.Helper()
	var pairs []string
	for _, vm := range kw.c.VolumeMounts {
		require.Empty(t, vm.SubPath, "%s: subPath mounts are not modelled", vm.Name)
		i := slices.IndexFunc(kw.pod.Volumes, func(v kubeVolume) bool { return v.Name == vm.Name })
		require.GreaterOrEqual(t, i, 0, "volume %s is declared", vm.Name)
		v := kw.pod.Volumes[i]
		var files map[string]string
		mode := os.FileMode(0o644)
		switch {
		case v.ConfigMap != nil:
			require.Empty(t, v.ConfigMap.Items, "%s: items are not modelled", v.Name)
			files = kw.m.configData(t, "ConfigMap", v.ConfigMap.Name)
		case v.Secret != nil:
			require.Empty(t, v.Secret.Items, "%s: items are not modelled", v.Name)
			files = kw.m.configData(t, "Secret", v.Secret.SecretName)
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
		default:
			t.Fatalf("volume %s: only configMap and secret volumes are modelled", v.Name)
		}
		dir := filepath.Join(root, vm.MountPath)
		require.NoError(t, os.MkdirAll(dir, 0o700))
		for name, content := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), mode|0o200))
		}
		pairs = append(pairs, vm.MountPath, dir)
	}
	return strings.NewReplacer(pairs...)
}

// secretMounts returns the mount path of every Secret volume, with the Secret's files.
func (kw *kubeWorker) secretMounts(t *testing.T) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, vm := range kw.c.VolumeMounts {
		for _, v := range kw.pod.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				out[vm.MountPath] = kw.m.configData(t, "Secret", v.Secret.SecretName)
			}
		}
	}
	return out
}

// httpPort is the port of the worker's --http endpoint.
func (kw *kubeWorker) httpPort(t *testing.T) int {
	t.Helper()
	require.NotEmpty(t, kw.worker.HTTP, "the Deployment sets --http: the probes and /metrics need it")
	_, p, err := net.SplitHostPort(kw.worker.HTTP)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return port
}

// probePort resolves a probe's port (a number or a container port's name).
func (kw *kubeWorker) probePort(t *testing.T, port any) int {
	t.Helper()
	switch p := port.(type) {
	case int:
		return p
	case string:
		for _, cp := range kw.c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
		t.Fatalf("probe port %q names no container port", p)
	}
	t.Fatalf("probe port %v is neither a number nor a name", port)
	return 0
}

// newWorker builds the worker (package worker) from the accounts the Deployment configures, as
// WorkerCmd.Run does, watched by o.
func (kw *kubeWorker) newWorker(t *testing.T, p *plan, o *observer) *worker.Worker {
	t.Helper()
	w, err := kw.worker.newWorker(p, p.accounts, o, nil, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	return w
}

// files lays out the container's files under a temp dir (see mount), with the accounts file's
// paths pointing into it, and returns what maps container paths there.
func (kw *kubeWorker) files(t *testing.T) *strings.Replacer {
	t.Helper()
	inRoot := kw.mount(t, t.TempDir())
	require.NotEmpty(t, kw.worker.B2.Config, "the Deployment gives an accounts file (--config)")
	path := inRoot.Replace(kw.worker.B2.Config)
	raw, err := os.ReadFile(path)
	require.NoError(t, err, "--config %s is a file of a mounted volume", kw.worker.B2.Config)
	require.NoError(t, os.WriteFile(path, []byte(inRoot.Replace(string(raw))), 0o600))
	return inRoot
}

// plan validates the worker's configuration with the container's files laid out, as the worker
// does at start (it reads the accounts file and every key file).
func (kw *kubeWorker) plan(t *testing.T) *plan {
	t.Helper()
	w := *kw.worker
	w.B2.Config = kw.files(t).Replace(w.B2.Config)
	p, err := w.validate()
	require.NoError(t, err, "the worker accepts the Deployment's configuration")
	return p
}

func TestKubernetesDeployment(t *testing.T) {
	kw := loadKubeWorker(t)
	w, pod, c := kw.worker, kw.pod, kw.c

	assert.Equal(t, kw.dep.Spec.Selector.MatchLabels, kw.dep.Spec.Template.Metadata.Labels, "the selector matches the pods")
	readable := envNames(command(t, model(t), "worker"))
	for name := range kw.env {
		assert.Contains(t, readable, name, "the worker is given %s, which it does not read", name)
	}
	assert.NotEmpty(t, w.Server, "NATS_URL is set: no embedded server, which would write to the read-only root")
	assert.Equal(t, "b2jet", kw.env["NATS_USER"], "the worker's user of the README's authorization block")
	assert.NotNil(t, w.Sandbox, "--sandbox=false: never answer with the fake B2")
	if w.Sandbox != nil {
		assert.False(t, *w.Sandbox)
	}

	t.Run("application keys are key files", func(t *testing.T) {
		assert.Empty(t, w.B2.KeyID+w.B2.Key, "no key in flags or variables")
		p := kw.plan(t)
		require.False(t, p.sandbox)
		secrets := kw.secretMounts(t)
		accounts := kw.m.configData(t, "ConfigMap", kw.configMapOf(t, w.B2.Config))
		var parsed accountsFile
		require.NoError(t, yaml.Unmarshal([]byte(accounts[filepath.Base(w.B2.Config)]), &parsed))
		require.NotEmpty(t, parsed.Accounts)
		assert.ElementsMatch(t, slices.Collect(maps.Keys(parsed.Accounts)), p.names)
		for name, e := range parsed.Accounts {
			assert.Empty(t, e.Key+e.KeyEnv, "account %s: its key is a file of the Secret, not inline or a variable", name)
			dir, file := filepath.Split(e.KeyFile)
			data, ok := secrets[filepath.Clean(dir)]
			if assert.True(t, ok, "account %s: keyFile %s lies in a mounted Secret", name, e.KeyFile) {
				assert.Equal(t, strings.TrimSpace(data[file]), string(p.accounts[name].Key), "account %s reads its key from the Secret", name)
			}
		}
		for _, v := range pod.Volumes {
			if v.Secret != nil && v.Secret.DefaultMode != nil {
				assert.Zero(t, *v.Secret.DefaultMode&0o007, "%s: key files are not world-readable", v.Name)
			}
		}
	})

	t.Run("probes are served by the worker's endpoint", func(t *testing.T) {
		port := kw.httpPort(t)
		require.NotNil(t, c.LivenessProbe)
		require.NotNil(t, c.ReadinessProbe)
		probes := map[string]*kubeProbe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
		if c.StartupProbe != nil {
			probes["startup"] = c.StartupProbe
		}
		o := newObserver()
		kw.newWorker(t, kw.plan(t), o)
		srv := httptest.NewServer(o.handler())
		t.Cleanup(srv.Close)
		get := func(path string) int {
			resp, err := http.Get(srv.URL + path)
			require.NoError(t, err)
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		for kind, pr := range probes {
			require.NotNil(t, pr.HTTPGet, "%s probe is an httpGet", kind)
			assert.Equal(t, port, kw.probePort(t, pr.HTTPGet.Port), "%s probe on the --http port", kind)
			code := get(pr.HTTPGet.Path)
			assert.NotEqual(t, http.StatusNotFound, code, "%s probe path %s is served", kind, pr.HTTPGet.Path)
			assert.NotEqual(t, http.StatusMethodNotAllowed, code, "%s probe path %s answers GET", kind, pr.HTTPGet.Path)
		}
		if p, ok := kw.dep.Spec.Template.Metadata.Annotations["prometheus.io/port"]; ok {
			assert.Equal(t, strconv.Itoa(port), p, "Prometheus scrapes the --http port")
		}
		assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		// Liveness must not depend on NATS or B2, or an outage would restart every worker; readiness
		// does (this worker has no connection yet).
		assert.Equal(t, http.StatusOK, get(c.LivenessProbe.HTTPGet.Path))
		assert.Equal(t, http.StatusServiceUnavailable, get(c.ReadinessProbe.HTTPGet.Path))
	})

	t.Run("the grace period outlasts the drain", func(t *testing.T) {
		require.NotNil(t, pod.TerminationGracePeriodSeconds)
		grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		var preStop time.Duration
		if ps := c.Lifecycle.PreStop; ps != nil {
			assert.Nil(t, ps.Exec, "the distroless image has no shell or sleep binary: use the sleep action")
			require.NotNil(t, ps.Sleep)
			preStop = time.Duration(ps.Sleep.Seconds) * time.Second
		}
		drain, err := time.ParseDuration(flagDefault(t, command(t, model(t), "worker"), "drain-timeout"))
		require.NoError(t, err)
		assert.Greater(t, grace, drain, "longer than the default --drain-timeout")
		// After SIGTERM (sent when preStop ends) the pulls drain at once, in-flight requests get
		// the drain timeout, and the HTTP endpoint gets its own shutdown time.
		need := preStop + w.DrainTimeout + httpShutdownTimeout
		assert.Greater(t, grace, need, "terminationGracePeriodSeconds covers preStop %v + --drain-timeout %v + HTTP shutdown %v",
			preStop, w.DrainTimeout, httpShutdownTimeout)
	})

	t.Run("non-root, read-only, with resources", func(t *testing.T) {
		sc := pod.SecurityContext
		if assert.NotNil(t, sc.RunAsNonRoot) {
			assert.True(t, *sc.RunAsNonRoot)
		}
		if assert.NotNil(t, sc.RunAsUser) {
			assert.NotZero(t, *sc.RunAsUser)
		}
		csc := c.SecurityContext
		if assert.NotNil(t, csc.AllowPrivilegeEscalation) {
			assert.False(t, *csc.AllowPrivilegeEscalation)
		}
		if assert.NotNil(t, csc.ReadOnlyRootFilesystem) {
			assert.True(t, *csc.ReadOnlyRootFilesystem)
		}
		assert.Contains(t, csc.Capabilities.Drop, "ALL")
		assert.NotEmpty(t, c.Resources.Requests["cpu"])
		assert.NotEmpty(t, c.Resources.Requests["memory"])
		assert.NotEmpty(t, c.Resources.Limits["memory"])
	})
}

// configMapOf returns the ConfigMap mounted where path lies.
func (kw *kubeWorker) configMapOf(t *testing.T, path string) string {
	t.Helper()
	for _, vm := range kw.c.VolumeMounts {
		if filepath.Dir(path) != filepath.Clean(vm.MountPath) {
			continue
		}
		for _, v := range kw.pod.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name
			}
		}
	}
	t.Fatalf("%s is in no mounted ConfigMap", path)
	return ""
}

// consumers returns the durable consumers a worker with this configuration creates
// (worker.Worker.Consumers).
func (kw *kubeWorker) consumers(t *testing.T) []string {
	t.Helper()
	return kw.newWorker(t, kw.plan(t), newObserver()).Consumers()
}

// kedaMetadata are the nats-jetstream trigger's metadata fields (KEDA's nats_jetstream_scaler).
var (
	kedaRequired = []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"}
	kedaOptional = []string{"activationLagThreshold", "useHttps"}
)

func TestKubernetesKEDA(t *testing.T) {
	kw := loadKubeWorker(t)
	w := kw.worker
	var so kubeScaledObject
	kw.m.only(t, "ScaledObject", &so)
	spec := so.Spec
	assert.Contains(t, []string{"", "Deployment"}, spec.ScaleTargetRef.Kind)
	assert.Equal(t, kw.name, spec.ScaleTargetRef.Name, "scales the worker Deployment")

	var named []string
	for i, tr := range spec.Triggers {
		assert.Equal(t, "nats-jetstream", tr.Type, "trigger %d", i)
		for _, k := range kedaRequired {
			assert.NotEmpty(t, tr.Metadata[k], "trigger %d sets %s", i, k)
		}
		for k := range tr.Metadata {
			assert.Contains(t, append(kedaRequired, kedaOptional...), k, "trigger %d: %s is no field of the nats-jetstream trigger", i, k)
		}
		endpoint := tr.Metadata["natsServerMonitoringEndpoint"]
		assert.NotContains(t, endpoint, "://", "trigger %d: KEDA adds the scheme (useHttps)", i)
		_, port, err := net.SplitHostPort(endpoint)
		if assert.NoError(t, err, "trigger %d: host:port", i) {
			assert.NotEmpty(t, port)
		}
		assert.Equal(t, w.RequestsStream, tr.Metadata["stream"], "trigger %d: the request stream", i)
		lag, err := strconv.ParseInt(tr.Metadata["lagThreshold"], 10, 64)
		if assert.NoError(t, err, "trigger %d: lagThreshold is an integer", i) {
			assert.Positive(t, lag)
		}
		named = append(named, tr.Metadata["consumer"])
	}
	slices.Sort(named)
	assert.Equal(t, kw.consumers(t), named, "one trigger per durable consumer the worker creates")

	if assert.NotNil(t, spec.MinReplicaCount) {
		assert.GreaterOrEqual(t, *spec.MinReplicaCount, 1, "a worker always runs: it answers unknown accounts and reconciles dead letters")
	}
	if assert.NotNil(t, spec.MaxReplicaCount) && w.MaxAckPending > 0 {
		assert.LessOrEqual(t, *spec.MaxReplicaCount*w.Concurrency, w.MaxAckPending,
			"workers beyond --max-ack-pending / --concurrency would only hold idle slots")
	}
}
