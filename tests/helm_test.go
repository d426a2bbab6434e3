package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

const chartDir = "deploy/helm/orderflow"

// The chart's PrometheusRules are rendered from a copy of the project's rule
// files (helm reads no file outside the chart); `make helm-rules` refreshes
// it, and this test fails when someone forgot.
func TestHelmRulesAreTheProjectRules(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	source, err := filepath.Glob(filepath.Join(root, "deploy/prometheus/rules/*.yml"))
	if err != nil || len(source) == 0 {
		t.Fatalf("no rule files in deploy/prometheus/rules (%v)", err)
	}
	copies, err := filepath.Glob(filepath.Join(root, chartDir, "files/rules/*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		out := make([]string, len(paths))
		for i, p := range paths {
			out[i] = filepath.Base(p)
		}
		return out
	}
	if !slices.Equal(names(source), names(copies)) {
		t.Fatalf("chart rule files %v differ from deploy/prometheus/rules %v: run make helm-rules", names(copies), names(source))
	}
	for _, p := range source {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, chartDir, "files/rules", filepath.Base(p)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/files/rules/%s differs from deploy/prometheus/rules: run make helm-rules", chartDir, filepath.Base(p))
		}
	}
}

// helmRelease is what one values file renders to, decoded into the
// Kubernetes API types.
type helmRelease struct {
	deployments     map[string]*appsv1.Deployment // by component label
	services        map[string]*corev1.Service
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	jobs            map[string]*batchv1.Job
	configMaps      map[string]*corev1.ConfigMap // by name
	secrets         map[string]*corev1.Secret
	netpols         map[string]*networkingv1.NetworkPolicy // by component label
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
}

// decodeStrict decodes one rendered object into out, refusing unknown
// fields (a misspelt or misplaced key) and values of the wrong type.
func decodeStrict(doc []byte, out any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("yaml to json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	return nil
}

// decodeRelease splits helm template's output into objects and decodes each
// strictly into the type its apiVersion and kind name. An object of any
// other kind fails: the chart renders nothing the test does not check.
func decodeRelease(t *testing.T, manifest []byte) helmRelease {
	t.Helper()
	r := helmRelease{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		jobs: map[string]*batchv1.Job{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		netpols: map[string]*networkingv1.NetworkPolicy{}}
	for i, doc := range bytes.Split(manifest, []byte("\n---")) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		if head.Kind == "" {
			continue // a document of comments only
		}
		gv, err := schema.ParseGroupVersion(head.APIVersion)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		component := head.Metadata.Labels["app.kubernetes.io/component"]
		var obj any
		switch gv.WithKind(head.Kind) {
		case appsv1.SchemeGroupVersion.WithKind("Deployment"):
			d := &appsv1.Deployment{}
			obj, r.deployments[component] = d, d
		case corev1.SchemeGroupVersion.WithKind("Service"):
			s := &corev1.Service{}
			obj, r.services[component] = s, s
		case policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"):
			p := &policyv1.PodDisruptionBudget{}
			obj, r.pdbs[component] = p, p
		case autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"):
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			obj, r.hpas[component] = h, h
		case batchv1.SchemeGroupVersion.WithKind("Job"):
			j := &batchv1.Job{}
			obj, r.jobs[component] = j, j
		case corev1.SchemeGroupVersion.WithKind("ConfigMap"):
			c := &corev1.ConfigMap{}
			obj, r.configMaps[head.Metadata.Name] = c, c
		case corev1.SchemeGroupVersion.WithKind("Secret"):
			s := &corev1.Secret{}
			obj, r.secrets[head.Metadata.Name] = s, s
		case networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):
			n := &networkingv1.NetworkPolicy{}
			obj, r.netpols[component] = n, n
		case monitoringv1.SchemeGroupVersion.WithKind("ServiceMonitor"):
			s := &monitoringv1.ServiceMonitor{}
			obj = s
			r.serviceMonitors = append(r.serviceMonitors, s)
		case monitoringv1.SchemeGroupVersion.WithKind("PrometheusRule"):
			p := &monitoringv1.PrometheusRule{}
			obj = p
			r.prometheusRules = append(r.prometheusRules, p)
		default:
			t.Fatalf("document %d: %s %s %q is of a kind the test does not validate", i, head.APIVersion, head.Kind, head.Metadata.Name)
		}
		if err := decodeStrict(doc, obj); err != nil {
			t.Fatalf("%s %q does not match the Kubernetes API: %v\n%s", head.Kind, head.Metadata.Name, err, doc)
		}
	}
	return r
}

// helmTool builds helm once (scripts/helm) and returns its path.
var helmTool = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "helm"), "path").Output()
	if err != nil {
		return "", fmt.Errorf("scripts/helm path: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

// runHelm runs helm in the repository root with a private home, returning
// its standard output and error apart.
func runHelm(t *testing.T, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := helmTool()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return out, errOut.Bytes(), err
}

// configVars asks each service binary which ORDERFLOW_* variables it reads
// (-config-vars): name to whether it is required.
var configVars = sync.OnceValues(func() (map[string]map[string]bool, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "orderflow-config-vars")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	vars := map[string]map[string]bool{}
	for _, svc := range []string{"order-command", "order-query", "outbox-relay", "order-projector"} {
		bin := filepath.Join(dir, svc)
		build := exec.Command("go", "build", "-o", bin, "./services/"+svc+"/cmd/"+svc)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %w\n%s", svc, err, out)
		}
		out, err := exec.Command(bin, "-config-vars").Output()
		if err != nil {
			return nil, fmt.Errorf("%s -config-vars: %w", svc, err)
		}
		vars[svc] = map[string]bool{}
		for line := range strings.Lines(string(out)) {
			name, mark, _ := strings.Cut(strings.TrimSpace(line), " ")
			vars[svc][name] = mark == "required"
		}
		if len(vars[svc]) < 5 {
			return nil, fmt.Errorf("%s -config-vars listed only %v", svc, vars[svc])
		}
	}
	return vars, nil
})

var serviceNames = []string{"order-command", "order-query", "outbox-relay", "order-projector"}

// Every values file in ci/ passes helm lint and renders objects that match
// the Kubernetes API and the services' configuration; the one named fail-*
// must be refused with its reason.
func TestHelmChart(t *testing.T) {
	testinfra.Integration(t) // builds helm from the module proxy the first time (minutes)
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, chartDir, "ci", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 values files in %s/ci, found %v (%v)", chartDir, files, err)
	}
	tests := map[string]struct {
		wantErr string
		check   func(t *testing.T, r helmRelease)
	}{
		"defaults.yaml":                        {check: checkDefaults},
		"production.yaml":                      {check: checkProduction},
		"existing-secrets.yaml":                {check: checkExistingSecrets},
		"fail-projector-above-partitions.yaml": {wantErr: "orderProjector.replicas (6) must not exceed kafka.partitions (4)"},
		"auth-disabled.yaml":                   {check: checkAuthDisabled},
		"fail-auth-without-keys.yaml":          {wantErr: "auth needs exactly one of auth.jwks, auth.existingConfigMap and auth.jwksUrl (0 given)"},
	}
	for _, f := range files {
		name := filepath.Base(f)
		tc, ok := tests[name]
		if !ok {
			t.Errorf("%s has no case in TestHelmChart", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			values := filepath.Join(chartDir, "ci", name)
			// helm lint renders in its lint mode, where `fail` only logs
			// "[INFO] Fail: ...": a refused values file lints clean, so the
			// log is checked here and the refusal with helm template.
			lintOut, lintLog, err := runHelm(t, "lint", "--strict", chartDir, "-f", values)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, lintOut, lintLog)
			}
			out, stderr, err := runHelm(t, "template", "orderflow", chartDir, "--namespace", "orders", "-f", values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(string(stderr), tc.wantErr) {
					t.Fatalf("helm template: %v, want it refused with %q:\n%s", err, tc.wantErr, stderr)
				}
				if !strings.Contains(string(lintLog), "Fail: "+tc.wantErr) {
					t.Errorf("helm lint did not report %q:\n%s", tc.wantErr, lintLog)
				}
				return
			}
			if bytes.Contains(lintLog, []byte("Fail:")) {
				t.Errorf("helm lint reports a failure:\n%s", lintLog)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			r := decodeRelease(t, out)
			checkCommon(t, r)
			tc.check(t, r)
		})
	}
}

// checkCommon holds for every release: the four services with probes,
// resources and exactly the variables they read, their secrets and
// topology present, hooks in order, policies and monitoring.
func checkCommon(t *testing.T, r helmRelease) {
	t.Helper()
	vars, err := configVars()
	if err != nil {
		t.Fatal(err)
	}
	httpPorts := map[string]int32{"order-command": 8080, "order-query": 8081, "outbox-relay": 8082, "order-projector": 8083}
	for _, svc := range serviceNames {
		d, ok := r.deployments[svc]
		if !ok {
			t.Errorf("no Deployment for %s", svc)
			continue
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", svc, len(d.Spec.Template.Spec.Containers))
		}
		c := d.Spec.Template.Spec.Containers[0]
		if !strings.Contains(c.Image, "/"+svc+":") {
			t.Errorf("%s runs image %q, want its own", svc, c.Image)
		}
		var http *corev1.ContainerPort
		for i := range c.Ports {
			if c.Ports[i].Name == "http" {
				http = &c.Ports[i]
			}
		}
		if http == nil || http.ContainerPort != httpPorts[svc] {
			t.Errorf("%s: http port %+v, want %d", svc, http, httpPorts[svc])
		}
		for probe, want := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
			if want == nil || want.HTTPGet == nil || want.HTTPGet.Path != probe || want.HTTPGet.Port.String() != "http" {
				t.Errorf("%s: probe %s is %+v, want GET %s on the http port", svc, probe, want, probe)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %+v, want CPU requests and memory limits", svc, c.Resources)
		}
		if pdb, ok := r.pdbs[svc]; !ok || pdb.Spec.Selector == nil || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != svc {
			t.Errorf("%s: no PodDisruptionBudget selecting it (%+v)", svc, pdb)
		}
		// The environment: every variable is one the service reads, set
		// once, and every required one is set.
		set := map[string]bool{}
		for _, e := range c.Env {
			if _, known := vars[svc][e.Name]; !known {
				t.Errorf("%s: the chart sets %s, which the service does not read", svc, e.Name)
			}
			if set[e.Name] {
				t.Errorf("%s: %s is set twice", svc, e.Name)
			}
			set[e.Name] = true
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
				checkSecretRef(t, r, svc, ref.SecretKeyRef)
			}
		}
		for name, required := range vars[svc] {
			if required && !set[name] {
				t.Errorf("%s: required %s is not set", svc, name)
			}
		}
		if addr := envValue(c.Env, "ORDERFLOW_HTTP_ADDR", "ORDERFLOW_ADMIN_HTTP_ADDR"); addr != fmt.Sprintf(":%d", httpPorts[svc]) {
			t.Errorf("%s listens for HTTP on %q, want :%d (all interfaces: the kubelet probes the pod's address)", svc, addr, httpPorts[svc])
		}
		if svc != "order-query" {
			checkTopologyMount(t, r, svc, d)
		}
	}
	relay := r.deployments["outbox-relay"]
	if relay.Spec.Replicas == nil || *relay.Spec.Replicas < 2 {
		t.Errorf("outbox-relay replicas %v, want at least 2", relay.Spec.Replicas)
	}
	if ref := envFrom(relay.Spec.Template.Spec.Containers[0].Env, "ORDERFLOW_RELAY_ID"); ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("ORDERFLOW_RELAY_ID is %+v, want the pod's name from the downward API", ref)
	}
	checkHooks(t, r)
	checkNetworkPolicies(t, r)
	checkMonitoring(t, r)
}

func envValue(env []corev1.EnvVar, names ...string) string {
	for _, e := range env {
		if slices.Contains(names, e.Name) {
			return e.Value
		}
	}
	return ""
}

func envFrom(env []corev1.EnvVar, name string) *corev1.EnvVarSource {
	for _, e := range env {
		if e.Name == name {
			return e.ValueFrom
		}
	}
	return nil
}

// existingSecrets are the Secrets ci/existing-secrets.yaml names; every other
// Secret a pod uses must be in the release.
var existingSecrets = map[string]bool{"prod-topology": true, "mongodb-orderflow-orderflow": true,
	"relay-admin": true}

func checkSecretRef(t *testing.T, r helmRelease, svc string, ref *corev1.SecretKeySelector) {
	t.Helper()
	if existingSecrets[ref.Name] {
		return
	}
	s, ok := r.secrets[ref.Name]
	if !ok {
		t.Errorf("%s: Secret %q is neither rendered nor an existing one", svc, ref.Name)
		return
	}
	if _, ok := s.StringData[ref.Key]; !ok {
		t.Errorf("%s: Secret %q has no key %q", svc, ref.Name, ref.Key)
	}
}

// topologyOf returns the topology JSON of a rendered ConfigMap or Secret, or
// false when it names an existing one.
func topologyOf(t *testing.T, r helmRelease, v corev1.Volume) (string, bool) {
	t.Helper()
	switch {
	case v.ConfigMap != nil:
		c, ok := r.configMaps[v.ConfigMap.Name]
		if !ok {
			t.Fatalf("ConfigMap %q of volume %s is not rendered", v.ConfigMap.Name, v.Name)
		}
		return c.Data["topology.json"], true
	case v.Secret != nil:
		if existingSecrets[v.Secret.SecretName] {
			return "", false
		}
		s, ok := r.secrets[v.Secret.SecretName]
		if !ok {
			t.Fatalf("Secret %q of volume %s is not rendered", v.Secret.SecretName, v.Name)
		}
		return s.StringData["topology.json"], true
	}
	t.Fatalf("volume %s is neither a ConfigMap nor a Secret", v.Name)
	return "", false
}

// checkTopologyMount: the topology is a directory mount (a subPath mount is
// never updated in place, so the reload would not see a change) of a file
// the services parse, at the path ORDERFLOW_TOPOLOGY_FILE names.
func checkTopologyMount(t *testing.T, r helmRelease, svc string, d *appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	file := envValue(c.Env, "ORDERFLOW_TOPOLOGY_FILE")
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == "topology" {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || mount.SubPath != "" || filepath.Join(mount.MountPath, "topology.json") != file {
		t.Errorf("%s: topology mount %+v, want a directory mount holding %s", svc, mount, file)
		return
	}
	if envValue(c.Env, "ORDERFLOW_TOPOLOGY_RELOAD") == "" {
		t.Errorf("%s: ORDERFLOW_TOPOLOGY_RELOAD is not set", svc)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != "topology" {
			continue
		}
		if js, ok := topologyOf(t, r, v); ok {
			if _, err := shard.ParseTopology([]byte(js)); err != nil {
				t.Errorf("%s: the rendered topology does not parse: %v\n%s", svc, err, js)
			}
		}
		return
	}
	t.Errorf("%s: no topology volume", svc)
}

// checkHooks: migrations, then topics, both before the services on install
// and upgrade, and the topology copy they mount before both.
func checkHooks(t *testing.T, r helmRelease) {
	t.Helper()
	weight := func(kind, name string, annotations map[string]string) string {
		if hook := annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
			t.Errorf("%s %s: hook %q, want pre-install,pre-upgrade", kind, name, hook)
		}
		return annotations["helm.sh/hook-weight"]
	}
	migrate, topics := r.jobs["migrate"], r.jobs["create-topics"]
	if migrate == nil || topics == nil {
		t.Fatalf("want the migrate and create-topics jobs, have %v", slices.Collect(func(yield func(string) bool) {
			for k := range r.jobs {
				yield(k)
			}
		}))
	}
	if w := weight("Job", "migrate", migrate.Annotations); w != "-10" {
		t.Errorf("migrate job weight %q, want -10", w)
	}
	if w := weight("Job", "create-topics", topics.Annotations); w != "-5" {
		t.Errorf("create-topics job weight %q, want -5", w)
	}
	if args := migrate.Spec.Template.Spec.Containers[0].Args; len(args) < 3 || args[0] != "migrate" || args[1] != "--topology" {
		t.Errorf("migrate job runs %v, want orderctl migrate --topology FILE", args)
	}
	if args := topics.Spec.Template.Spec.Containers[0].Args; len(args) < 2 || args[0] != "kafka" || args[1] != "create-topics" {
		t.Errorf("create-topics job runs %v, want orderctl kafka create-topics", args)
	}
	for _, v := range migrate.Spec.Template.Spec.Volumes {
		var annotations map[string]string
		switch {
		case v.ConfigMap != nil:
			annotations = r.configMaps[v.ConfigMap.Name].Annotations
		case v.Secret != nil && !existingSecrets[v.Secret.SecretName]:
			annotations = r.secrets[v.Secret.SecretName].Annotations
		default:
			continue
		}
		if w := weight("topology", v.Name, annotations); w != "-20" {
			t.Errorf("the migrate job's topology has hook weight %q, want -20 (created before the job)", w)
		}
	}
}

// checkNetworkPolicies: the relay's admin ports only from the operators'
// pods (and its HTTP port from Prometheus, which scrapes it).
func checkNetworkPolicies(t *testing.T, r helmRelease) {
	t.Helper()
	for _, svc := range serviceNames {
		if _, ok := r.netpols[svc]; !ok {
			t.Errorf("no NetworkPolicy for %s", svc)
		}
	}
	relay := r.netpols["outbox-relay"]
	if relay == nil {
		return
	}
	for _, rule := range relay.Spec.Ingress {
		grpc := slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port.IntValue() == 9092 })
		for _, peer := range rule.From {
			operator := peer.PodSelector != nil && peer.PodSelector.MatchLabels["orderflow.io/operator"] == "true"
			prometheus := peer.PodSelector != nil && peer.PodSelector.MatchLabels["app.kubernetes.io/name"] == "prometheus"
			if !operator && !(prometheus && !grpc) {
				t.Errorf("the relay's admin ports %v are open to %+v, want the operators' pods only", rule.Ports, peer)
			}
		}
		if len(rule.From) == 0 {
			t.Errorf("the relay's ports %v are open to everyone", rule.Ports)
		}
	}
}

// checkMonitoring: one ServiceMonitor whose job label is the service name
// (the rules match on job="order-command" and so on), and every project rule.
func checkMonitoring(t *testing.T, r helmRelease) {
	t.Helper()
	if len(r.serviceMonitors) != 1 || r.serviceMonitors[0].Spec.JobLabel != "app.kubernetes.io/component" {
		t.Errorf("ServiceMonitors %+v, want one taking the job from the component label", r.serviceMonitors)
	}
	for _, svc := range serviceNames {
		s := r.services[svc]
		if s == nil || s.Labels["app.kubernetes.io/component"] != svc || s.Labels["orderflow.io/metrics"] != "true" ||
			!slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "http" }) {
			t.Errorf("%s: Service %+v is not one the ServiceMonitor scrapes as job %s", svc, s, svc)
		}
	}
	want := map[string]bool{}
	for _, f := range readRuleFiles(t) {
		for _, g := range f.Groups {
			for _, rule := range g.Rules {
				want[rule.Alert+rule.Record+"/"+g.Name] = true
			}
		}
	}
	got := map[string]bool{}
	for _, p := range r.prometheusRules {
		for _, g := range p.Spec.Groups {
			for _, rule := range g.Rules {
				got[rule.Alert+rule.Record+"/"+g.Name] = true
			}
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Errorf("PrometheusRules carry %d rules, the project has %d", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("rule %s is missing from the PrometheusRules", k)
		}
	}
}

// authServices verify tokens: order-command and order-query every call,
// the relay's admin API operators' tokens.
var authServices = []string{"order-command", "order-query", "outbox-relay"}

// checkAuth checks the ORDERFLOW_AUTH_* variables of the services that
// verify tokens: with a JWK Set file, it is jwks.json of the ConfigMap
// jwksConfigMap mounted read-only at the file's directory; want holds the
// other variables' values (a "" value: the variable is not set), the
// PlaceOrder limit only on order-command.
func checkAuth(t *testing.T, r helmRelease, jwksConfigMap string, want map[string]string) {
	t.Helper()
	for _, svc := range authServices {
		c := r.deployments[svc].Spec.Template.Spec.Containers[0]
		spec := r.deployments[svc].Spec.Template.Spec
		file := envValue(c.Env, "ORDERFLOW_AUTH_JWKS_FILE")
		if jwksConfigMap != "" {
			var volume string
			for _, m := range c.VolumeMounts {
				if m.MountPath+"/jwks.json" == file && m.ReadOnly {
					volume = m.Name
				}
			}
			if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
				return v.Name == volume && v.ConfigMap != nil && v.ConfigMap.Name == jwksConfigMap
			}) {
				t.Errorf("%s: ORDERFLOW_AUTH_JWKS_FILE=%q is not jwks.json of ConfigMap %s mounted read-only (mounts %+v)", svc, file, jwksConfigMap, c.VolumeMounts)
			}
		} else if file != "" {
			t.Errorf("%s: ORDERFLOW_AUTH_JWKS_FILE=%q, want none", svc, file)
		}
		for name, value := range want {
			if svc != "order-command" && strings.HasPrefix(name, "ORDERFLOW_AUTH_PLACE_ORDER_") {
				value = "" // the limit is order-command's
			}
			if got := envValue(c.Env, name); got != value {
				t.Errorf("%s: %s = %q, want %q", svc, name, got, value)
			}
		}
	}
}

func checkAuthDisabled(t *testing.T, r helmRelease) {
	checkAuth(t, r, "", map[string]string{"ORDERFLOW_AUTH_DISABLED": "true", "ORDERFLOW_AUTH_JWKS_URL": "", "ORDERFLOW_AUTH_ISSUER": ""})
	if _, ok := r.configMaps["orderflow-jwks"]; ok {
		t.Errorf("a JWK Set ConfigMap is rendered with authentication off")
	}
}

func checkDefaults(t *testing.T, r helmRelease) {
	checkAuth(t, r, "orderflow-jwks", map[string]string{"ORDERFLOW_AUTH_ISSUER": "orderflow-local", "ORDERFLOW_AUTH_AUDIENCE": "orderflow",
		"ORDERFLOW_AUTH_PLACE_ORDER_RATE": "5", "ORDERFLOW_AUTH_PLACE_ORDER_BURST": "20", "ORDERFLOW_AUTH_DISABLED": ""})
	if cm := r.configMaps["orderflow-jwks"]; cm == nil || !strings.Contains(cm.Data["jwks.json"], `"kty":"OKP"`) || strings.Contains(cm.Data["jwks.json"], `"d":`) {
		t.Errorf("JWK Set ConfigMap %+v, want the public set of ci/defaults.yaml", cm)
	}
	if len(r.hpas) != 0 {
		t.Errorf("HPAs by default: %v", r.hpas)
	}
	if _, ok := r.configMaps["orderflow-topology"]; !ok {
		t.Errorf("no topology ConfigMap by default")
	}
	if tok := r.secrets["orderflow-admin-token"]; tok == nil || len(tok.StringData["token"]) < 32 {
		t.Errorf("admin token Secret %+v, want a generated token", tok)
	}
	for _, svc := range serviceNames {
		if d := r.deployments[svc]; d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("%s: replicas %v, want 2 by default", svc, d.Spec.Replicas)
		}
	}
}

func checkProduction(t *testing.T, r helmRelease) {
	for _, svc := range []string{"order-command", "order-query"} {
		h, ok := r.hpas[svc]
		if !ok || h.Spec.ScaleTargetRef.Name != r.deployments[svc].Name || h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
			t.Errorf("%s: HPA %+v, want one scaling its Deployment", svc, h)
		}
		if r.deployments[svc].Spec.Replicas != nil {
			t.Errorf("%s: replicas set while an HPA owns them", svc)
		}
		if r.pdbs[svc].Spec.MinAvailable == nil {
			t.Errorf("%s: PDB %+v, want minAvailable from the values", svc, r.pdbs[svc].Spec)
		}
	}
	if len(r.configMaps) != 0 {
		t.Errorf("ConfigMaps %v: the topology carries passwords and belongs in a Secret, and the JWK Set comes from a URL", r.configMaps)
	}
	checkAuth(t, r, "", map[string]string{"ORDERFLOW_AUTH_JWKS_URL": "https://id.example.com/.well-known/jwks.json",
		"ORDERFLOW_AUTH_ISSUER": "https://id.example.com", "ORDERFLOW_AUTH_AUDIENCE": "orderflow-api", "ORDERFLOW_AUTH_LEEWAY": "1m",
		"ORDERFLOW_AUTH_PLACE_ORDER_RATE": "2", "ORDERFLOW_AUTH_PLACE_ORDER_BURST": "10"})
	topo, err := shard.ParseTopology([]byte(r.secrets["orderflow-topology"].StringData["topology.json"]))
	if err != nil || len(topo.Shards) != 4 {
		t.Errorf("topology %+v (%v), want 4 shards", topo, err)
	}
	if got := envValue(r.deployments["order-command"].Spec.Template.Spec.Containers[0].Env, "ORDERFLOW_SHARD_MAX_OPEN_CONNS"); got != "32" {
		t.Errorf("order-command ORDERFLOW_SHARD_MAX_OPEN_CONNS = %q, want 32 from config", got)
	}
	if args := r.jobs["create-topics"].Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "48") {
		t.Errorf("create-topics args %v, want 48 partitions", args)
	}
}

func checkExistingSecrets(t *testing.T, r helmRelease) {
	if len(r.secrets) != 0 || len(r.configMaps) != 0 {
		t.Errorf("rendered Secrets %v and ConfigMaps %v, want none: every one exists", r.secrets, r.configMaps)
	}
	checkAuth(t, r, "auth-jwks", nil)
	if ref := envFrom(r.deployments["outbox-relay"].Spec.Template.Spec.Containers[0].Env, "ORDERFLOW_ADMIN_TOKEN"); ref == nil ||
		ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "relay-admin" || ref.SecretKeyRef.Key != "admin-token" {
		t.Errorf("ORDERFLOW_ADMIN_TOKEN from %+v, want relay-admin/admin-token", ref)
	}
}
