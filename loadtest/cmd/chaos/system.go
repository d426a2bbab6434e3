package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/bench"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/authclient"
	"github.com/orderflow/orderflow/shared/freeport"
)

// topology is the shape of the private system: shards, Kafka nodes and
// instances of order-command and order-query (relays and projectors are
// always two).
type topology struct {
	cluster    bool
	shards     int
	kafkaNodes int
	instances  int
}

// singleTopology is `make up`'s shape; clusterTopology is CLUSTER=1's:
// three KRaft brokers whose topics keep three replicas and need two in
// sync, four shards and two instances of every service.
var (
	singleTopology  = topology{shards: 2, kafkaNodes: 1, instances: 1}
	clusterTopology = topology{cluster: true, shards: 4, kafkaNodes: 3, instances: 2}
)

// system is a private orderflow: its own MariaDB shards, Kafka broker(s) and
// read store (started with scripts/infra in their own state directory and
// on their own ports) and two relays, two projectors, order-command and
// order-query (two of each in a cluster) started here, so that each can be
// killed, stopped and restarted without touching anything else on the
// machine.
type system struct {
	topology
	repo, state                         string
	shardBase, kafkaPort, kafkaCtrl     int
	mongoPort, prometheusPort           int
	token                               string
	services                            map[string]*service
	order                               []string // start order of services
	commandGRPC, queryGRPC              []string
	commandHTTP, queryHTTP              []string
	relayHTTP, relayGRPC, projectorHTTP []string
	stopped                             map[int]bool // pids this tool SIGSTOPped
	// healed is how long the last broker restart took until every
	// partition was fully replicated again (set by the broker fault).
	healed time.Duration
	logf   func(format string, args ...any)
}

// service is one service process of the private system.
type service struct {
	name, bin, readyURL string
	env                 []string
	cmd                 *exec.Cmd
	done                chan struct{}
}

// newSystem picks free ports and prepares the state directory: it stops
// what an earlier, interrupted run left running there and wipes its data,
// keeping the fetched Kafka and read-store libraries and the binaries.
func newSystem(ctx context.Context, topo topology, repo, state, seedLibs string, logf func(string, ...any)) (*system, error) {
	s := &system{topology: topo, repo: repo, state: state, services: map[string]*service{}, stopped: map[int]bool{}, logf: logf,
		token: "chaos-" + bench.RandomID() + bench.RandomID() + bench.RandomID() + bench.RandomID()}
	if err := os.MkdirAll(filepath.Join(state, "run"), 0o755); err != nil {
		return nil, err
	}
	s.stopLeftovers(ctx)
	for _, p := range []string{"mysql", "kafka/data", "kafka/server.properties", "kafka/node1", "kafka/node2", "kafka/node3",
		"kafka/cluster-id", "mode", "prometheus.yml", "mongo/orders.journal", "mongo/orders.h2", "mongo/orders.h2.mv.db",
		"mongo/orders.h2.trace.db", "prometheus", "topology.json", "infra.env", "run", "logs", "auth"} {
		if err := os.RemoveAll(filepath.Join(state, p)); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"run", "logs", "bin"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			return nil, err
		}
	}
	// A signing key of the run's own: its services verify tokens with its
	// public set, its load signs each caller's token with it.
	if _, err := auth.GenerateKeys(s.authDir(), 1); err != nil {
		return nil, err
	}
	if seedLibs != "" {
		for _, lib := range []string{"kafka/libs", "mongo/libs"} {
			if err := seed(filepath.Join(seedLibs, lib), filepath.Join(state, lib)); err != nil {
				return nil, fmt.Errorf("seeding %s: %w", lib, err)
			}
		}
	}
	// The ports stay held until this process ends (the system's servers
	// are restarted on them during the run).
	ports := freeport.New()
	var err error
	if s.shardBase, err = ports.Run(s.shards); err != nil {
		return nil, err
	}
	// Node n listens on kafkaPort+2(n-1), its controller one above.
	if s.kafkaPort, err = ports.Run(2 * s.kafkaNodes); err != nil {
		return nil, err
	}
	s.kafkaCtrl = s.kafkaPort + 1
	if s.mongoPort, err = ports.Port(); err != nil {
		return nil, err
	}
	if s.prometheusPort, err = ports.Port(); err != nil {
		return nil, err
	}
	addrs := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			if err == nil {
				out[i], err = ports.Addr()
			}
		}
		return out
	}
	s.commandHTTP, s.commandGRPC = addrs(s.instances), addrs(s.instances)
	s.queryHTTP, s.queryGRPC = addrs(s.instances), addrs(s.instances)
	s.relayHTTP, s.relayGRPC = addrs(2), addrs(2)
	s.projectorHTTP = addrs(2)
	if err != nil {
		return nil, err
	}
	if err := s.writePrometheusConfig(); err != nil {
		return nil, err
	}
	return s, nil
}

// writePrometheusConfig points the private system's Prometheus at its own
// services, with the project's alert rules.
func (s *system) writePrometheusConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by the chaos suite for its private system.\nglobal:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n")
	fmt.Fprintf(&b, "rule_files:\n  - %s\n", filepath.Join(s.repo, "deploy", "prometheus", "rules", "*.yml"))
	fmt.Fprintf(&b, "scrape_configs:\n")
	jobs := []struct {
		job     string
		targets []string
	}{
		{"order-command", s.commandHTTP}, {"order-query", s.queryHTTP},
		{"outbox-relay", s.relayHTTP}, {"order-projector", s.projectorHTTP},
	}
	for _, j := range jobs {
		fmt.Fprintf(&b, "  - job_name: %s\n    static_configs:\n      - targets: [\"%s\"]\n", j.job, strings.Join(j.targets, `", "`))
	}
	return os.WriteFile(s.prometheusConfig(), []byte(b.String()), 0o644)
}

func (s *system) prometheusConfig() string { return filepath.Join(s.state, "prometheus.yml") }

// authDir holds the private system's signing key and public JWK Set.
func (s *system) authDir() string { return filepath.Join(s.state, "auth") }

// tokens signs the load's tokens with the private system's key.
func (s *system) tokens() (*authclient.Minter, error) {
	return authclient.NewMinter(authclient.MinterConfig{KeyFile: filepath.Join(s.authDir(), auth.SigningKeyFile), TTL: 24 * time.Hour})
}

// chaosPlaceOrderLimit is the services' PlaceOrder rate and burst per
// caller: far above what the load sends, so that the clients' retries
// through an outage (every attempt counts) are never refused as over the
// limit. The suite proves that no confirmed order is lost; the limiter has
// tests of its own.
const chaosPlaceOrderLimit = "1000000"

// PrometheusURL is the private system's Prometheus.
func (s *system) prometheusURL() string { return "http://127.0.0.1:" + strconv.Itoa(s.prometheusPort) }

// seed copies a library directory of another state directory (the shared
// one, already fetched) when this one has none; scripts/infra still checks
// its stamp and fetches again when the sources changed.
func seed(from, to string) error {
	if _, err := os.Stat(filepath.Join(to, ".stamp")); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(from, ".stamp")); err != nil {
		return nil // nothing to seed from: scripts/infra fetches
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	_ = os.RemoveAll(to)
	if out, err := exec.Command("cp", "-r", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %w: %s", err, out)
	}
	return nil
}

// cleanEnv is this process's environment without the variables that would
// point a child at the shared infrastructure.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "ORDERFLOW_"), strings.HasPrefix(k, "MONGO_"), strings.HasPrefix(k, "KAFKA_"),
			k == "SHARDS", k == "SHARD_BASE_PORT", k == "CLUSTER", k == "SERVICES_PORT_OFFSET":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (s *system) infraEnv() []string {
	cluster := "0"
	if s.cluster {
		cluster = "1"
	}
	return append(cleanEnv(),
		"CLUSTER="+cluster,
		"ORDERFLOW_STATE_DIR="+s.state,
		"SHARDS="+strconv.Itoa(s.shards),
		"SHARD_BASE_PORT="+strconv.Itoa(s.shardBase),
		"KAFKA_PORT="+strconv.Itoa(s.kafkaPort),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(s.kafkaCtrl),
		"KAFKA_PARTITIONS=6",
		"KAFKA_HEAP=512m",
		"MONGO_PORT="+strconv.Itoa(s.mongoPort),
		// A killed in-memory store would lose every document; the
		// journaled one is what make up runs and survives a kill.
		"MONGO_BACKEND=journal",
		"MONGO_HEAP=1g",
		"PROMETHEUS_PORT="+strconv.Itoa(s.prometheusPort),
		"PROMETHEUS_CONFIG="+s.prometheusConfig(),
	)
}

// infra runs scripts/infra with the private settings. `up` is idempotent:
// it starts only what does not run, so it also restarts a killed server.
func (s *system) infra(ctx context.Context, verb string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.repo, "scripts/infra"), verb)
	cmd.Dir, cmd.Env = s.repo, s.infraEnv()
	logFile, err := os.OpenFile(filepath.Join(s.state, "chaos-infra.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/infra %s: %w (see %s)", verb, err, logFile.Name())
	}
	return nil
}

func (s *system) topologyFile() string { return filepath.Join(s.state, "topology.json") }

// kafkaBrokers is the bootstrap list, every node's broker port.
func (s *system) kafkaBrokers() string {
	var b []string
	for n := range s.kafkaNodes {
		b = append(b, "127.0.0.1:"+strconv.Itoa(s.kafkaPort+2*n))
	}
	return strings.Join(b, ",")
}
func (s *system) mongoURI() string { return "mongodb://127.0.0.1:" + strconv.Itoa(s.mongoPort) }
func (s *system) orderctl() string { return filepath.Join(s.state, "bin", "orderctl") }

// shardDSN is the DSN of shard i's orderflow database.
func (s *system) shardDSN(i int) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/orderflow", s.shardBase+i)
}

// kafkaServer is the scripts/infra pid name of Kafka node n (1..): "kafka"
// for the single broker, "kafka-<n>" in a cluster.
func (s *system) kafkaServer(n int) string {
	if !s.cluster {
		return "kafka"
	}
	return "kafka-" + strconv.Itoa(n)
}

// instanceName is the service name of instance i (0..) of order-command or
// order-query: the first keeps the plain name.
func instanceName(svc string, i int) string {
	if i == 0 {
		return svc
	}
	return fmt.Sprintf("%s-%c", svc, 'a'+i)
}

// up starts the infrastructure, builds the services and starts two relays,
// two projectors, order-command and order-query.
func (s *system) up(ctx context.Context) error {
	s.logf("starting MariaDB x%d (ports %d..), Kafka x%d (%s), read store (%d, h2), Prometheus (%s) in %s",
		s.shards, s.shardBase, s.kafkaNodes, s.kafkaBrokers(), s.mongoPort, s.prometheusURL(), s.state)
	if err := s.infra(ctx, "up"); err != nil {
		return err
	}
	s.logf("building the services into %s/bin", s.state)
	names := []string{"order-command", "order-query", "outbox-relay", "order-projector"}
	args := []string{"build", "-o", filepath.Join(s.state, "bin") + "/"}
	for _, n := range names {
		args = append(args, "./services/"+n+"/cmd/"+n)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = s.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	common := []string{
		"ORDERFLOW_TOPOLOGY_FILE=" + s.topologyFile(),
		"ORDERFLOW_KAFKA_BROKERS=" + s.kafkaBrokers(),
		"ORDERFLOW_MONGO_URI=" + s.mongoURI(),
		"ORDERFLOW_ADMIN_TOKEN=" + s.token,
		"ORDERFLOW_AUTH_JWKS_FILE=" + filepath.Join(s.authDir(), auth.PublicKeysFile),
		"ORDERFLOW_AUTH_PLACE_ORDER_RATE=" + chaosPlaceOrderLimit,
		"ORDERFLOW_AUTH_PLACE_ORDER_BURST=" + chaosPlaceOrderLimit,
	}
	add := func(name, bin string, http string, env ...string) {
		s.services[name] = &service{name: name, bin: filepath.Join(s.state, "bin", bin),
			readyURL: "http://" + http + "/readyz", env: append(append(cleanEnv(), common...), env...)}
		s.order = append(s.order, name)
	}
	for i := range s.instances {
		add(instanceName("order-command", i), "order-command", s.commandHTTP[i],
			"ORDERFLOW_HTTP_ADDR="+s.commandHTTP[i], "ORDERFLOW_GRPC_ADDR="+s.commandGRPC[i])
	}
	for i := range s.instances {
		add(instanceName("order-query", i), "order-query", s.queryHTTP[i],
			"ORDERFLOW_HTTP_ADDR="+s.queryHTTP[i], "ORDERFLOW_GRPC_ADDR="+s.queryGRPC[i])
	}
	for i, id := range []string{"a", "b"} {
		h := s.relayHTTP[i]
		add("relay-"+id, "outbox-relay", h, "ORDERFLOW_RELAY_ID=relay-"+id,
			"ORDERFLOW_ADMIN_HTTP_ADDR="+h, "ORDERFLOW_ADMIN_GRPC_ADDR="+s.relayGRPC[i])
	}
	for i, id := range []string{"a", "b"} {
		h := s.projectorHTTP[i]
		add("projector-"+id, "order-projector", h, "ORDERFLOW_HTTP_ADDR="+h)
	}
	for _, name := range s.order {
		if err := s.start(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// start starts a service (again) and waits until its /readyz answers 200.
// A service that exits during start-up is started again, up to
// startAttempts times: its port can be held for a moment by something
// outside this tool's port locks (a connection of another program), and a
// fault's recovery must not fail on that.
func (s *system) start(ctx context.Context, name string) error {
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var exited bool
		if exited, err = s.startOnce(ctx, name); err == nil || !exited {
			return err
		}
		s.logf("%s: %v (attempt %d of %d)", name, err, attempt, startAttempts)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	return err
}

// startAttempts bounds how often start tries a service that exits during
// start-up.
const startAttempts = 3

// startOnce starts a service once; exited reports that it ended during
// start-up (rather than not becoming ready in time).
func (s *system) startOnce(ctx context.Context, name string) (exited bool, _ error) {
	svc := s.services[name]
	logFile, err := os.OpenFile(filepath.Join(s.state, "logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	defer logFile.Close()
	cmd := exec.Command(svc.bin)
	cmd.Env, cmd.Dir = svc.env, s.state
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C at the terminal reaches this tool,
	// which tears the system down in order, and not the services directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("starting %s: %w", name, err)
	}
	svc.cmd, svc.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(svc.done)
	_ = os.WriteFile(filepath.Join(s.state, "run", name+".svcpid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	err = s.waitReady(ctx, svc, 90*time.Second)
	select {
	case <-svc.done:
		return err != nil, err
	default:
		return false, err
	}
}

func (s *system) waitReady(ctx context.Context, svc *service, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(svc.readyURL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-svc.done:
			return fmt.Errorf("%s exited during start-up, see %s/logs/%s.log", svc.name, s.state, svc.name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s, see %s/logs/%s.log", svc.name, timeout, s.state, svc.name)
		}
	}
}

// kill SIGKILLs a service and waits until it is gone.
func (s *system) kill(name string) {
	svc := s.services[name]
	if svc.cmd == nil {
		return
	}
	_ = svc.cmd.Process.Kill()
	<-svc.done
}

// stopService ends a service with SIGTERM (SIGKILL after 20 s).
func (s *system) stopService(name string) {
	svc := s.services[name]
	if svc.cmd == nil {
		return
	}
	select {
	case <-svc.done:
		return
	default:
	}
	_ = svc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-svc.done:
	case <-time.After(20 * time.Second):
		s.kill(name)
	}
}

// infraPID is the pid scripts/infra recorded for a server: "kafka",
// "mongo" or "mysql-shard<i>".
func (s *system) infraPID(name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(s.state, "run", name+".pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s pid file: %w", name, err)
	}
	// A recycled pid would be some other program: the servers run with
	// this state directory on their command line.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), s.state) {
		return 0, fmt.Errorf("%s (pid %d) does not run", name, pid)
	}
	return pid, nil
}

// signalInfra sends sig to an infrastructure server and, for SIGKILL, waits
// until it is gone.
func (s *system) signalInfra(name string, sig syscall.Signal) error {
	pid, err := s.infraPID(name)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %s to %s: %w", sig, name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		s.stopped[pid] = true
	case syscall.SIGCONT:
		delete(s.stopped, pid)
	case syscall.SIGKILL:
		for i := 0; i < 300 && syscall.Kill(pid, 0) == nil; i++ {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(st), ") Z ") {
				break // a zombie of the setsid'd server: gone for every purpose
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// down continues what is stopped, stops the services and then the
// infrastructure. It is safe to call on a partly started system.
func (s *system) down(ctx context.Context) {
	for pid := range s.stopped {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	for i := len(s.order) - 1; i >= 0; i-- {
		s.stopService(s.order[i])
	}
	if err := s.infra(ctx, "down"); err != nil {
		s.logf("tearing down the infrastructure: %v", err)
	}
}

// stopLeftovers ends what a run killed before its teardown left in the
// state directory: services by their pid files, then scripts/infra down.
func (s *system) stopLeftovers(ctx context.Context) {
	files, _ := filepath.Glob(filepath.Join(s.state, "run", "*.svcpid"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if pid > 0 && strings.HasPrefix(string(cmdline), filepath.Join(s.state, "bin")) {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, f := range []string{"kafka", "kafka-1", "kafka-2", "kafka-3", "mongo",
		"mysql-shard0", "mysql-shard1", "mysql-shard2", "mysql-shard3"} {
		if pid, err := s.infraPID(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	if _, err := os.Stat(filepath.Join(s.state, "run")); err == nil {
		_ = s.infra(ctx, "down")
	}
}
