package cli

import (
	"github.com/spf13/pflag"

	"github.com/orderflow/orderflow/shared/config"
)

// Settings are where orderctl finds the system, read once from the same
// ORDERFLOW_* variables, with the same library and defaults, as the services
// (shared/config): run next to a service's environment, orderctl works on
// what that service works on. Every setting is a flag's default; the flag
// overrides it.
type Settings struct {
	// TopologyFile is the JSON list of shards and shard epochs (--topology).
	TopologyFile string `env:"TOPOLOGY_FILE" envDefault:".state/topology.json"`
	// MongoURI and MongoDatabase locate the read side (--mongo,
	// --mongo-database).
	MongoURI      string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"orderflow"`
	// KafkaBrokers are the bootstrap servers, comma-separated (--brokers).
	KafkaBrokers string `env:"KAFKA_BROKERS" envDefault:"127.0.0.1:19092"`
	// ProjectorGroup and ProjectorTopic are the consumer group and topic
	// whose lag status checks (--group, --topic).
	ProjectorGroup string `env:"PROJECTOR_GROUP" envDefault:"order-projector"`
	ProjectorTopic string `env:"PROJECTOR_TOPIC" envDefault:"orders.internal.v1"`
	// DLQTopic holds the projector's dead letters (--dlq-topic).
	DLQTopic string `env:"DLQ_TOPIC" envDefault:"orders.internal.dlq.v1"`
	// ExternalTopic receives the external events (--external-topic).
	ExternalTopic string `env:"EXTERNAL_TOPIC" envDefault:"orders.external.v1"`
	// PrometheusURL is where status reads freshness and alerts
	// (--prometheus; "" skips it).
	PrometheusURL string `env:"PROMETHEUS_URL" envDefault:"http://127.0.0.1:9095"`
	// AuthDir holds the local signing key and the public JWK Set (keys
	// generate --dir; token --key is its signing key).
	AuthDir string `env:"AUTH_DIR" envDefault:".state/auth"`
	// AuthIssuer and AuthAudience are the iss and aud of the tokens token
	// issues, which the services verify (--issuer, --audience).
	AuthIssuer   string `env:"AUTH_ISSUER" envDefault:"orderflow-local"`
	AuthAudience string `env:"AUTH_AUDIENCE" envDefault:"orderflow"`
}

// LoadSettings reads the settings from environ (nil: the process
// environment).
func LoadSettings(environ map[string]string) (Settings, error) {
	return config.LoadFrom[Settings](environ)
}

// bindTopology adds --topology, defaulting to the settings' topology file.
func bindTopology(fl *pflag.FlagSet, topology *string, s Settings) {
	fl.StringVar(topology, "topology", s.TopologyFile, "topology file ($ORDERFLOW_TOPOLOGY_FILE)")
}

// bindMongo adds --mongo and --mongo-database, defaulting to the settings'
// read side.
func bindMongo(fl *pflag.FlagSet, uri, database *string, s Settings) {
	fl.StringVar(uri, "mongo", s.MongoURI, "MongoDB URI ($ORDERFLOW_MONGO_URI)")
	fl.StringVar(database, "mongo-database", s.MongoDatabase, "MongoDB database of the read side ($ORDERFLOW_MONGO_DATABASE)")
}
