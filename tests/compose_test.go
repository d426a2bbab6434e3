package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The docker-compose topology is checked statically: it is loaded and
// normalised the way `docker compose` does it, without a Docker engine.

const (
	composeFile       = "docker-compose.yml"
	topologyMountPath = "/etc/orderflow/topology.json"
)

// repoRoot is the nearest directory above the test's working directory that
// holds go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work in any directory above the tests")
		}
		dir = parent
	}
}

// composeProject loads docker-compose.yml once for every test in this file.
var composeProject = sync.OnceValues(func() (*types.Project, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		// The host environment stays out so that the result does not depend
		// on who runs the test; the one variable the file requires is given.
		cli.WithEnv([]string{"ORDERFLOW_ADMIN_TOKEN=compose-test-token-0123456789abcdef"}),
	)
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", composeFile, err)
	}
	return project, nil
})

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	project, err := composeProject()
	if err != nil {
		t.Fatal(err)
	}
	return project
}

func service(t *testing.T, project *types.Project, name string) types.ServiceConfig {
	t.Helper()
	svc, err := project.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return svc
}

// mysqlShards lists the services that are MySQL shards, by name.
func mysqlShards(project *types.Project) []string {
	var names []string
	for _, name := range project.ServiceNames() {
		if strings.HasPrefix(name, "mysql-shard-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestComposeLoads(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	if len(project.Services) == 0 {
		t.Error("docker-compose.yml defines no services")
	}
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"mysql-shard-0", "mysql-shard-1", "kafka", "mongo", "prometheus", "alertmanager", "grafana", "jaeger",
		"migrate", "create-topics", "order-command", "outbox-relay", "order-projector", "order-query",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			service(t, loadCompose(t), name)
		})
	}
}

func TestComposeInfrastructureHealthchecks(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	infra := append(mysqlShards(project), "kafka", "mongo")
	if len(infra) < 4 {
		t.Fatalf("infrastructure services = %v, want two MySQL shards, kafka and mongo", infra)
	}
	for _, name := range infra {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hc := service(t, project, name).HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 {
				t.Fatalf("%s has no healthcheck; dependants wait for service_healthy", name)
			}
			if kind := hc.Test[0]; kind != "CMD" && kind != "CMD-SHELL" {
				t.Errorf("%s healthcheck test starts with %q, want CMD or CMD-SHELL", name, kind)
			}
		})
	}
}

func TestComposeDependencies(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	shards := mysqlShards(project)
	if len(shards) != 2 {
		t.Fatalf("MySQL shard services = %v, want 2", shards)
	}

	type dependency struct {
		service, on, condition string
	}
	var cases []dependency
	for _, shard := range shards {
		cases = append(cases,
			dependency{"order-command", shard, types.ServiceConditionHealthy},
			dependency{"outbox-relay", shard, types.ServiceConditionHealthy},
			dependency{"migrate", shard, types.ServiceConditionHealthy})
	}
	cases = append(cases,
		dependency{"order-command", "migrate", types.ServiceConditionCompletedSuccessfully},
		dependency{"create-topics", "kafka", types.ServiceConditionHealthy},
		dependency{"prometheus", "order-command", types.ServiceConditionStarted},
		dependency{"outbox-relay", "kafka", types.ServiceConditionHealthy},
		dependency{"outbox-relay", "create-topics", types.ServiceConditionCompletedSuccessfully},
		dependency{"prometheus", "outbox-relay", types.ServiceConditionStarted},
		dependency{"order-projector", "mongo", types.ServiceConditionHealthy},
		dependency{"order-query", "mongo", types.ServiceConditionHealthy},
		dependency{"order-projector", "create-topics", types.ServiceConditionCompletedSuccessfully},
	)
	for _, tc := range cases {
		t.Run(tc.service+"/"+tc.on, func(t *testing.T) {
			t.Parallel()
			dep, ok := service(t, project, tc.service).DependsOn[tc.on]
			if !ok {
				t.Fatalf("%s does not depend on %s", tc.service, tc.on)
			}
			if dep.Condition != tc.condition {
				t.Errorf("%s depends on %s with condition %q, want %q", tc.service, tc.on, dep.Condition, tc.condition)
			}
		})
	}
}

// TestComposeBuilds checks every service built from source: its Dockerfile
// exists and its SERVICE build argument names a main package under
// services/<SERVICE>/cmd/<SERVICE>.
func TestComposeBuilds(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	built := 0
	for _, name := range project.ServiceNames() {
		svc := service(t, project, name)
		if svc.Build == nil {
			continue
		}
		built++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			build := svc.Build
			buildContext := build.Context
			if !filepath.IsAbs(buildContext) {
				buildContext = filepath.Join(project.WorkingDir, buildContext)
			}
			if buildContext != project.WorkingDir {
				t.Errorf("build context = %s, want the repository root %s", buildContext, project.WorkingDir)
			}
			dockerfile := build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(buildContext, dockerfile)
			}
			if st, err := os.Stat(dockerfile); err != nil || st.IsDir() {
				t.Errorf("Dockerfile %s: not a file (%v)", dockerfile, err)
			}

			arg := build.Args["SERVICE"]
			if arg == nil || *arg == "" {
				t.Fatalf("build argument SERVICE is not set")
			}
			cmdDir := filepath.Join(buildContext, "services", *arg, "cmd", *arg)
			if st, err := os.Stat(cmdDir); err != nil || !st.IsDir() {
				t.Errorf("SERVICE=%s: %s is not a directory (%v)", *arg, cmdDir, err)
			}
		})
	}
	if built == 0 {
		t.Error("no service is built from source")
	}
}

func TestComposePorts(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	cases := []struct {
		service   string
		published string
		target    uint32
	}{
		{"mysql-shard-0", "3307", 3306},
		{"mysql-shard-1", "3308", 3306},
		{"kafka", "19092", 19092},
		{"mongo", "27017", 27017},
		{"order-command", "9090", 9090},
		{"order-command", "8080", 8080},
		{"outbox-relay", "9092", 9092},
		{"outbox-relay", "8082", 8082},
		{"order-projector", "8083", 8083},
		{"order-query", "9091", 9091},
		{"order-query", "8081", 8081},
		{"prometheus", "9095", 9090},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.service, tc.published), func(t *testing.T) {
			t.Parallel()
			ports := service(t, project, tc.service).Ports
			for _, p := range ports {
				if p.Published == tc.published {
					if p.Target != tc.target {
						t.Errorf("host port %s maps to container port %d, want %d", tc.published, p.Target, tc.target)
					}
					return
				}
			}
			t.Errorf("%s does not publish host port %s (ports %+v)", tc.service, tc.published, ports)
		})
	}

	// No two services may claim the same host port.
	t.Run("unique", func(t *testing.T) {
		t.Parallel()
		owner := map[string]string{}
		for _, name := range project.ServiceNames() {
			for _, p := range service(t, project, name).Ports {
				if other, ok := owner[p.Published]; ok && p.Published != "" {
					t.Errorf("host port %s published by both %s and %s", p.Published, other, name)
				}
				owner[p.Published] = name
			}
		}
	})
}

// TestComposeOrderCommandConfig checks the environment and the topology file
// that order-command reads.
func TestComposeOrderCommandConfig(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	svc := service(t, project, "order-command")

	env := map[string]string{
		"ORDERFLOW_GRPC_ADDR":     ":9090",
		"ORDERFLOW_HTTP_ADDR":     ":8080",
		"ORDERFLOW_TOPOLOGY_FILE": topologyMountPath,
		"ORDERFLOW_LOG_LEVEL":     "info",
		"ORDERFLOW_KAFKA_BROKERS": "kafka:19092",
		"ORDERFLOW_MONGO_URI":     "mongodb://mongo:27017",
		"GOMAXPROCS":              "1",
	}
	for key, want := range env {
		t.Run("env/"+key, func(t *testing.T) {
			t.Parallel()
			got := svc.Environment[key]
			if got == nil || *got != want {
				t.Errorf("%s = %v, want %q", key, deref(got), want)
			}
		})
	}

	t.Run("topology", func(t *testing.T) {
		t.Parallel()
		var source string
		for _, v := range svc.Volumes {
			if v.Target == topologyMountPath {
				if v.Type != types.VolumeTypeBind {
					t.Fatalf("%s is mounted as %s, want a bind mount", topologyMountPath, v.Type)
				}
				if !v.ReadOnly {
					t.Errorf("%s is mounted read-write, want read-only", topologyMountPath)
				}
				source = v.Source
			}
		}
		if source == "" {
			t.Fatalf("order-command does not mount %s", topologyMountPath)
		}
		if !filepath.IsAbs(source) {
			source = filepath.Join(project.WorkingDir, source)
		}
		data, err := os.ReadFile(source)
		if err != nil {
			t.Fatal(err)
		}
		var topology struct {
			Shards []struct {
				Name string `json:"name"`
				DSN  string `json:"dsn"`
			} `json:"shards"`
			Epochs []struct {
				FirstOrderNo int64    `json:"firstOrderNo"`
				Shards       []string `json:"shards"`
			} `json:"epochs"`
		}
		if err := json.Unmarshal(data, &topology); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if len(topology.Shards) != 2 {
			t.Fatalf("%s has %d shards, want 2", source, len(topology.Shards))
		}
		// Every shard's DSN reaches a MySQL shard service of the compose file.
		for _, s := range topology.Shards {
			host, ok := dsnHost(s.DSN)
			if !ok {
				t.Errorf("shard %s: no tcp(host:port) in DSN %q", s.Name, s.DSN)
				continue
			}
			if _, err := project.GetService(host); err != nil || !strings.HasPrefix(host, "mysql-shard-") {
				t.Errorf("shard %s: DSN host %q is not a MySQL shard service", s.Name, host)
			}
		}
		if len(topology.Epochs) == 0 || len(topology.Epochs[0].Shards) != 2 {
			t.Errorf("%s: want one epoch over both shards, got %+v", source, topology.Epochs)
		}
	})
}

// dsnHost returns the host of a go-sql-driver DSN such as
// "root@tcp(mysql-shard-0:3306)/orderflow".
func dsnHost(dsn string) (string, bool) {
	_, rest, ok := strings.Cut(dsn, "tcp(")
	if !ok {
		return "", false
	}
	addr, _, ok := strings.Cut(rest, ")")
	if !ok {
		return "", false
	}
	host, _, ok := strings.Cut(addr, ":")
	return host, ok && host != ""
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// The observability services get the project's files: Prometheus the alert
// rules and an Alertmanager to send them to, Grafana its data source and the
// dashboard. Every mounted path exists in the repository.
func TestComposeObservability(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		service, target string
	}{
		{"prometheus", "/etc/prometheus/prometheus.yml"},
		{"prometheus", "/etc/prometheus/rules"},
		{"alertmanager", "/etc/alertmanager/alertmanager.yml"},
		{"grafana", "/etc/grafana/provisioning"},
		{"grafana", "/var/lib/grafana/dashboards"},
	}
	for _, c := range cases {
		t.Run(c.service+c.target, func(t *testing.T) {
			t.Parallel()
			for _, v := range service(t, project, c.service).Volumes {
				if v.Target != c.target {
					continue
				}
				rel, err := filepath.Rel(root, v.Source)
				if err != nil || strings.HasPrefix(rel, "..") {
					t.Fatalf("%s mounts %s from %s, outside the repository", c.service, c.target, v.Source)
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Fatalf("%s mounts %s from %s: %v", c.service, c.target, rel, err)
				}
				return
			}
			t.Errorf("%s does not mount %s", c.service, c.target)
		})
	}
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/etc/prometheus/rules/*.yml", "alertmanager:9093"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("deploy/compose/prometheus.yml does not name %s", want)
		}
	}
}

// The services that verify tokens read the public JWK Set that the
// auth-keys job wrote: ORDERFLOW_AUTH_JWKS_FILE lies in the job's volume,
// mounted read-only, and they start only after the job completed, so the
// set exists when they read it.
func TestComposeAuthKeys(t *testing.T) {
	t.Parallel()
	project := loadCompose(t)
	job := service(t, project, "auth-keys")
	var jobDir string
	for _, v := range job.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "auth-keys" {
			jobDir = v.Target
		}
	}
	if jobDir == "" || !slices.Equal([]string(job.Command), []string{"keys", "generate", "--dir", jobDir, "--keep", "3"}) {
		t.Fatalf("auth-keys: command %q, volume target %q; want keys generate into the auth-keys volume", job.Command, jobDir)
	}
	for _, name := range []string{"order-command", "order-query", "outbox-relay"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			svc := service(t, project, name)
			file := deref(svc.Environment["ORDERFLOW_AUTH_JWKS_FILE"])
			mounted := false
			for _, v := range svc.Volumes {
				if v.Type == types.VolumeTypeVolume && v.Source == "auth-keys" && v.ReadOnly && file == filepath.Join(v.Target, "jwks.json") {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("ORDERFLOW_AUTH_JWKS_FILE=%q is not jwks.json in a read-only mount of the auth-keys volume: %+v", file, svc.Volumes)
			}
			if dep, ok := svc.DependsOn["auth-keys"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("depends on auth-keys: %+v, want service_completed_successfully", dep)
			}
		})
	}
}
